import FerryPluginKit
import Hummingbird

/// GET /healthz: alive while the scheduler loop keeps turning.
struct HealthHandler: APIHandler {
    let heartbeat: Heartbeat
    let registry: RunRegistry

    init(_ deps: APIRoutes.Dependencies) {
        heartbeat = deps.heartbeat
        registry = deps.registry
    }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let age = heartbeat.age
        let alive = age < 10
        return APIRoutes.json(alive ? .ok : .serviceUnavailable, .object([
            "status": .string(alive ? "ok" : "stuck"), "loopAgeSeconds": .number((age * 1000).rounded() / 1000),
            "runsInFlight": .integer(Int64(registry.inFlight)),
        ]))
    }
}
