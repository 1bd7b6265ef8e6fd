import FerryPluginKit
import Hummingbird

/// Refuses a request body over the daemon's limit with 413 and a JSON error:
/// at once when its Content-Length says so, else when a route reading a
/// chunked body reaches the limit.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit { return tooLarge }
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return tooLarge
        }
    }

    var tooLarge: Response {
        APIRoutes.json(.contentTooLarge, .object([
            "error": .string("the request body is larger than \(limit) bytes (max_body_bytes)"), "limitBytes": .integer(Int64(limit)),
        ]))
    }
}
