import Hummingbird

/// One endpoint: built once from the daemon's parts, then asked for every
/// request on its route.
protocol APIHandler: HTTPResponder where Context == APIRequestContext {
    init(_ deps: APIRoutes.Dependencies)
}

/// A row of the route table: the router, the bearer check, and the list the
/// tests compare with docs/openapi.yaml are all read from these rows.
public struct APIRoute: Sendable {
    /// Who may call the route. An open route still shows more (error text,
    /// sample records) to a caller with the token.
    public enum Access: Sendable, Equatable {
        case open
        /// 401 without the right bearer token, or when the daemon has none.
        case token
    }

    let httpMethod: HTTPRequest.Method
    /// In OpenAPI's form, `/runs/{id}`, which the router reads as it is.
    public let path: String
    public let access: Access
    let handler: any APIHandler.Type

    init(_ method: HTTPRequest.Method, _ path: String, _ access: Access, _ handler: any APIHandler.Type) {
        self.httpMethod = method
        self.path = path
        self.access = access
        self.handler = handler
    }

    public var method: String { httpMethod.rawValue }
}
