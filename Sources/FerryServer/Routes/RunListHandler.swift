import FerryPluginKit
import Hummingbird

/// GET /runs: recent runs, newest first, redacted for a caller without the token.
struct RunListHandler: APIHandler {
    let registry: RunRegistry

    init(_ deps: APIRoutes.Dependencies) { registry = deps.registry }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let pipeline = request.uri.queryParameters.get("pipeline")
        let limitText = request.uri.queryParameters.get("limit")
        let limit = limitText.flatMap { Int($0) } ?? 50
        if limitText != nil && (Int(limitText!) ?? 0) < 1 { return APIRoutes.problem(.badRequest, "limit: expected a positive integer") }
        if let pipeline, registry.pipelines[pipeline] == nil { return APIRoutes.problem(.notFound, "no pipeline named '\(pipeline)'") }
        let runs = registry.list(pipeline: pipeline, limit: limit)
        return APIRoutes.json(.ok, .object(["runs": .array(context.callerHasToken ? runs : runs.map(APIRoutes.redacted))]))
    }
}
