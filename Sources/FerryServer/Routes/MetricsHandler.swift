import Hummingbird

/// GET /metrics: the Prometheus text exposition.
struct MetricsHandler: APIHandler {
    let metrics: ServerMetrics

    init(_ deps: APIRoutes.Dependencies) { metrics = deps.metrics }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
    }
}
