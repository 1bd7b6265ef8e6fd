import FerryPluginKit
import Hummingbird

/// GET /pipelines: every pipeline the daemon serves, by name.
struct PipelineListHandler: APIHandler {
    let registry: RunRegistry
    let scheduler: Scheduler

    init(_ deps: APIRoutes.Dependencies) {
        registry = deps.registry
        scheduler = deps.scheduler
    }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let names = registry.pipelines.keys.sorted()
        return APIRoutes.json(.ok, .object(["pipelines": .array(names.map { APIRoutes.describe(pipeline: $0, registry, scheduler) })]))
    }
}
