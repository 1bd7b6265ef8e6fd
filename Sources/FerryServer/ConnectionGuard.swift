import Foundation
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes

/// The connections the HTTP server holds: at most `cap`. A connection over the
/// cap takes the place of one that has no request in progress (the one stalled
/// longest in a request's head first, then the one idle longest between
/// requests), else it is closed at once. A kubelet probe opens a new
/// connection each time, so refusing newcomers while slow clients sit on every
/// slot would fail the probes and get the pod killed; taking a stalled slot
/// lets the probe in, and a connection busy with a request is never taken.
final class ConnectionLimiter: @unchecked Sendable {
    /// How far a connection is with its requests; the lower, the sooner it gives way.
    enum Stage: Int {
        /// Waiting for (the rest of) a request's head.
        case awaitingHead = 0
        /// Between requests, kept alive.
        case idle = 1
        /// A request is being answered: never taken.
        case busy = 2
    }

    private struct Entry {
        let close: @Sendable () -> Void
        var stage: Stage
        /// When the stage began, as a sequence number: the oldest gives way first.
        var since: UInt64
    }

    /// Connections in one stage, oldest first. Stale items (the connection has
    /// moved on or gone) are skipped when met, so every step is O(1) amortized:
    /// a flood makes room for each newcomer without a scan over the cap.
    private struct Queue {
        var items: [(id: ObjectIdentifier, since: UInt64)] = []
        var head = 0

        mutating func append(_ id: ObjectIdentifier, _ since: UInt64) {
            if head > 1024 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            items.append((id, since))
        }

        mutating func popOldest(where isCurrent: (ObjectIdentifier, UInt64) -> Bool) -> ObjectIdentifier? {
            while head < items.count {
                let item = items[head]
                head += 1
                if isCurrent(item.id, item.since) { return item.id }
            }
            return nil
        }
    }

    let cap: Int
    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Entry] = [:]
    private var queues = [Queue(), Queue()]
    private var sequence: UInt64 = 0
    private let open = Metrics.Gauge(label: "ferry_http_connections")
    private let evicted = Metrics.Counter(label: "ferry_http_connections_closed_total", dimensions: [("reason", "replaced")])
    private let refused = Metrics.Counter(label: "ferry_http_connections_closed_total", dimensions: [("reason", "refused")])
    private let timedOut = Metrics.Counter(label: "ferry_http_connections_closed_total", dimensions: [("reason", "header_timeout")])

    init(cap: Int) {
        self.cap = cap
        open.record(0)
        [evicted, refused, timedOut].forEach { $0.increment(by: 0) }
    }

    var count: Int { lock.withLock { entries.count } }

    /// Admits a new connection, closing a stalled one to make room when at the
    /// cap. False: no room, the caller closes the new connection.
    func admit(_ id: ObjectIdentifier, close: @escaping @Sendable () -> Void) -> Bool {
        let (admitted, victim, total): (Bool, (@Sendable () -> Void)?, Int) = lock.withLock {
            var victim: (@Sendable () -> Void)?
            if entries.count >= cap {
                guard let key = oldest(in: .awaitingHead) ?? oldest(in: .idle) else { return (false, nil, entries.count) }
                victim = entries.removeValue(forKey: key)?.close
            }
            sequence += 1
            entries[id] = Entry(close: close, stage: .awaitingHead, since: sequence)
            queues[Stage.awaitingHead.rawValue].append(id, sequence)
            return (true, victim, entries.count)
        }
        if let victim {
            evicted.increment()
            victim()
        }
        if !admitted { refused.increment() }
        open.record(total)
        return admitted
    }

    func update(_ id: ObjectIdentifier, to stage: Stage) {
        lock.withLock {
            guard entries[id] != nil, entries[id]?.stage != stage else { return }
            sequence += 1
            entries[id]?.stage = stage
            entries[id]?.since = sequence
            if stage != .busy { queues[stage.rawValue].append(id, sequence) }
        }
    }

    /// Caller holds the lock.
    private func oldest(in stage: Stage) -> ObjectIdentifier? {
        queues[stage.rawValue].popOldest { id, since in entries[id].map { $0.stage == stage && $0.since == since } ?? false }
    }

    func release(_ id: ObjectIdentifier) {
        let total = lock.withLock {
            entries[id] = nil
            return entries.count
        }
        open.record(total)
    }

    func headerTimedOut() { timedOut.increment() }
}

/// One connection's progress, shared by its two handlers (one before the HTTP
/// decoder, one after). Confined to the connection's event loop.
final class ConnectionWatch {
    let limiter: ConnectionLimiter
    let headerTimeout: TimeAmount
    private var id: ObjectIdentifier?
    private var admitted = false
    private var awaitingHead = true
    /// A request's head was read and its body is still coming.
    private var reading = false
    /// Requests read whose response has not been written to the end.
    private var responding = 0
    private var headerTimer: Scheduled<Void>?

    init(limiter: ConnectionLimiter, headerTimeout: TimeAmount) {
        self.limiter = limiter
        self.headerTimeout = headerTimeout
    }

    func activate(_ context: ChannelHandlerContext) {
        guard id == nil else { return }
        let channel = context.channel
        let key = ObjectIdentifier(channel)
        id = key
        guard limiter.admit(key, close: { channel.close(promise: nil) }) else {
            context.close(promise: nil)
            return
        }
        admitted = true
        armHeaderTimer(context)
    }

    func deactivate() {
        headerTimer?.cancel()
        headerTimer = nil
        if admitted, let id { limiter.release(id) }
        admitted = false
    }

    /// Bytes arrived: after a finished exchange they begin the next request's head.
    func bytesArrived(_ context: ChannelHandlerContext) {
        guard admitted, !awaitingHead, !reading, responding == 0, let id else { return }
        awaitingHead = true
        limiter.update(id, to: .awaitingHead)
        armHeaderTimer(context)
    }

    func headRead() {
        guard admitted, let id else { return }
        awaitingHead = false
        headerTimer?.cancel()
        headerTimer = nil
        reading = true
        responding += 1
        limiter.update(id, to: .busy)
    }

    func requestEnded() { reading = false }

    func responseEnded() {
        guard admitted, let id else { return }
        responding = max(0, responding - 1)
        // The answer is out: what is left of a body (after an early 413, say) is only drained.
        if responding == 0 { limiter.update(id, to: .idle) }
    }

    private func armHeaderTimer(_ context: ChannelHandlerContext) {
        headerTimer?.cancel()
        let loopBound = NIOLoopBound((watch: self, context: context), eventLoop: context.eventLoop)
        headerTimer = context.eventLoop.scheduleTask(in: headerTimeout) {
            let (watch, context) = loopBound.value
            watch.headerTimer = nil
            guard watch.awaitingHead else { return }
            watch.limiter.headerTimedOut()
            context.close(promise: nil)
        }
    }
}

/// First in the pipeline: sees every byte, before the HTTP decoder.
final class ConnectionGuardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let watch: ConnectionWatch

    init(_ watch: ConnectionWatch) { self.watch = watch }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { watch.activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        watch.activate(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.deactivate()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { watch.deactivate() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        watch.bytesArrived(context)
        context.fireChannelRead(data)
    }
}

/// After the HTTP decoder: sees where each request's head ends and each response ends.
final class RequestPhaseHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    let watch: ConnectionWatch

    init(_ watch: ConnectionWatch) { self.watch = watch }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: watch.headRead()
        case .body: break
        case .end: watch.requestEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { watch.responseEnded() }
        context.write(data, promise: promise)
    }
}

/// Hummingbird's HTTP/1 channel with the connection cap and the header-read
/// timeout around it (its own idle timeout covers the time between requests).
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let limiter: ConnectionLimiter
    let headerTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let limiter = self.limiter
        let headerTimeout = self.headerTimeout
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let watch = ConnectionWatch(limiter: limiter, headerTimeout: headerTimeout)
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ConnectionGuardHandler(watch), position: .first)
            let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(RequestPhaseHandler(watch), position: .before(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the daemon's connection limits.
    static func guardedHTTP1(_ limits: ConnectionLimits, limiter: ConnectionLimiter) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(
                inner: HTTP1Channel(
                    responder: responder, configuration: .init(idleTimeout: .nanoseconds(Int64(limits.idleTimeoutSeconds * 1e9)))),
                limiter: limiter,
                headerTimeout: .nanoseconds(Int64(limits.headerTimeoutSeconds * 1e9)))
        }
    }
}
