import Hummingbird

/// GET /pipelines/{name}: one pipeline.
struct PipelineHandler: APIHandler {
    let registry: RunRegistry
    let scheduler: Scheduler

    init(_ deps: APIRoutes.Dependencies) {
        registry = deps.registry
        scheduler = deps.scheduler
    }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        guard registry.pipelines[name] != nil else { return APIRoutes.problem(.notFound, "no pipeline named '\(name)'") }
        return APIRoutes.json(.ok, APIRoutes.describe(pipeline: name, registry, scheduler))
    }
}
