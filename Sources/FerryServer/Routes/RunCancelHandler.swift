import Hummingbird

/// POST /runs/{id}/cancel: stops a run at its next commit. The token is checked before this runs.
struct RunCancelHandler: APIHandler {
    let registry: RunRegistry

    init(_ deps: APIRoutes.Dependencies) { registry = deps.registry }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        switch registry.cancel(id: id) {
        case nil: return APIRoutes.problem(.notFound, "no run with id '\(id)'")
        case false?: return APIRoutes.problem(.conflict, "run '\(id)' has already finished")
        case true?: return APIRoutes.json(.accepted, .object(["id": .string(id), "status": "cancelling", "href": .string("/runs/\(id)")]))
        }
    }
}
