import Hummingbird

/// GET /runs/{id}: one run, redacted for a caller without the token.
struct RunHandler: APIHandler {
    let registry: RunRegistry

    init(_ deps: APIRoutes.Dependencies) { registry = deps.registry }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let run = registry.json(id: id) else { return APIRoutes.problem(.notFound, "no run with id '\(id)'") }
        return APIRoutes.json(.ok, context.callerHasToken ? run : APIRoutes.redacted(run))
    }
}
