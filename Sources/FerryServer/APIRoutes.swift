import FerryCore
import Hummingbird

/// The HTTP API. `table` is the one list of routes: the router is built from
/// it, the bearer check reads each row's access, and the tests compare it with
/// docs/openapi.yaml and call every row over a socket, so the three cannot
/// drift apart.
public enum APIRoutes {
    public static let table: [APIRoute] = [
        APIRoute(.get, "/healthz", .open, HealthHandler.self),
        APIRoute(.get, "/readyz", .open, ReadinessHandler.self),
        APIRoute(.get, "/metrics", .open, MetricsHandler.self),
        APIRoute(.get, "/pipelines", .open, PipelineListHandler.self),
        APIRoute(.get, "/pipelines/{name}", .open, PipelineHandler.self),
        APIRoute(.post, "/pipelines/{name}/runs", .token, RunStartHandler.self),
        APIRoute(.post, "/pipelines/{name}/diff", .token, DiffStartHandler.self),
        APIRoute(.get, "/runs", .open, RunListHandler.self),
        APIRoute(.get, "/runs/{id}", .open, RunHandler.self),
        APIRoute(.post, "/runs/{id}/cancel", .token, RunCancelHandler.self),
    ]

    public static var all: [(method: String, path: String)] { table.map { ($0.method, $0.path) } }

    struct Dependencies: Sendable {
        let registry: RunRegistry
        let scheduler: Scheduler
        let metrics: ServerMetrics
        let readiness: ReadinessProbe
        let heartbeat: Heartbeat
        let token: BearerToken
        let config: DaemonConfig
    }

    static func router(_ deps: Dependencies) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        // Outermost, so an oversized body is refused before the token is looked at, as before.
        router.add(middleware: BodyLimitMiddleware(limit: deps.config.connectionLimits.maxBodyBytes))
        for route in table {
            router.group()
                .add(middleware: BearerAuthMiddleware(token: deps.token, access: route.access))
                .on(RouterPath(route.path), method: route.httpMethod, responder: route.handler.init(deps))
        }
        return router
    }
}
