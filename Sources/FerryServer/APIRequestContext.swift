import Hummingbird

/// The request context every API route sees. `callerHasToken` is decided once,
/// by `BearerAuthMiddleware`, so a handler that shows more to the token's
/// holder (error text, sample records) never reads the header itself.
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var callerHasToken = false

    init(source: Source) {
        coreContext = .init(source: source)
    }
}
