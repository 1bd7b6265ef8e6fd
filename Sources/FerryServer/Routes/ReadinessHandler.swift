import FerryPluginKit
import Foundation
import Hummingbird

/// GET /readyz: each pipeline's problems, their error text only for the token's holder.
struct ReadinessHandler: APIHandler {
    let probe: ReadinessProbe

    init(_ deps: APIRoutes.Dependencies) { probe = deps.readiness }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let trusted = context.callerHasToken
        let probe = self.probe
        // The probe opens sources and sinks with blocking calls: off the event loop.
        let (ready, pipelines) = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: probe.run()) }.start()
        }
        return APIRoutes.json(ready ? .ok : .serviceUnavailable, .object([
            "status": .string(ready ? "ready" : "not ready"),
            "pipelines": .object(Dictionary(uniqueKeysWithValues: pipelines.map { status in
                (status.name, JSONValue.object([
                    "ready": .bool(status.problems.isEmpty), "problems": .array(status.problems.map { .string($0.text(trusted: trusted)) }),
                ]))
            })),
        ]))
    }
}
