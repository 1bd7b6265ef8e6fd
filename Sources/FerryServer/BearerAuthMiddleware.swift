import Hummingbird

/// The bearer check, in front of every route: it records whether the caller
/// holds the API token, and refuses a route that needs the token with 401
/// before the route reads its body or looks anything up, so an unknown
/// pipeline or run answers the same as a known one.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let token: BearerToken
    let access: APIRoute.Access

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.callerHasToken = token.accepts(request.headers[.authorization])
        if access == .token {
            guard token.isConfigured else {
                return APIRoutes.problem(.unauthorized, "no API token is configured on this daemon: triggers are disabled")
            }
            guard context.callerHasToken else { return APIRoutes.problem(.unauthorized, "missing or wrong bearer token") }
        }
        return try await next(request, context)
    }
}
