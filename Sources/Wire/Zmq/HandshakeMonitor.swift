import CZmq
import Foundation

/// Reports the peers a socket drops during the ZMTP handshake, which libzmq otherwise drops
/// without a word: a worker without CURVE keys knocking at a CURVE coordinator never reaches the
/// ZAP handler, so only the socket's monitor events (ZMQ_EVENT_HANDSHAKE_FAILED_*) tell of it.
///
/// Create the monitor on the socket's owner thread, before `bind` (events before it are not
/// seen). It reads the events on a thread of its own and calls `onFailure` there, rate-limited:
/// per endpoint, peer host and reason, the first failure at once, then one summing-up report per
/// `interval` while they go on (`HandshakeFailure.count`). The peer's address is best effort
/// (see `HandshakeFailure.peerAddress`).
///
/// It ends with `stop()` (from any thread; also on deinit) or by itself when the socket is
/// closed. Stop it, or close the socket, before the context goes: its thread holds a socket of
/// that context.
public final class HandshakeMonitor: @unchecked Sendable {
    /// Counts since the start.
    public struct Statistics: Sendable, Equatable {
        /// Connections accepted by the monitored socket.
        public var accepted = 0
        /// Failed handshakes seen (reported or held back).
        public var failed = 0
        /// Calls of `onFailure`.
        public var reports = 0
    }

    /// The inproc endpoint libzmq publishes the events on.
    public let monitorEndpoint: String
    private let shared: Shared

    /// Starts monitoring `socket` (call on its owner thread, before `bind`); returns once the
    /// monitor's thread receives the events.
    /// - Parameters:
    ///   - kinds: the failures to report; `ZapAuthenticator` already reports the peers it refuses
    ///     (with their keys), so a caller that logs those may leave `.authentication` out.
    ///   - interval: the rate limit's interval.
    ///   - onFailure: called on the monitor's thread; keep it short (log it, count it).
    public init(socket: ZmqSocket, kinds: Set<HandshakeFailure.Kind> = Set(HandshakeFailure.Kind.allCases),
                interval: Duration = .seconds(10),
                onFailure: @escaping @Sendable (HandshakeFailure) -> Void) throws(ZmqError) {
        monitorEndpoint = "inproc://scvae-handshake-monitor-\(UUID().uuidString)"
        let events = kinds.reduce(ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_MONITOR_STOPPED) { $0 | $1.event }
        try socket.monitor(monitorEndpoint, events: events)
        let shared = Shared(Statistics())
        self.shared = shared
        let context = socket.context, endpoint = monitorEndpoint
        let limiter = HandshakeFailureLimiter(interval: interval)
        let thread = Thread {
            HandshakeMonitor.watch(endpoint, context: context, shared: shared, limiter: limiter, onFailure: onFailure)
        }
        thread.name = "scvae-zmq-monitor"
        thread.start()
        let startBound = 10.0
        switch shared.waitUntilStarted(timeout: startBound) {
        case .success?:
            return
        case let .failure(error)?:
            shared.requestStop()
            throw error
        case nil:
            shared.requestStop()
            throw .timedOut(operation: "start the handshake monitor", endpoint: endpoint, seconds: startBound)
        }
    }

    deinit { stop() }

    /// Whether the monitor's thread still reads events (started, not stopped, socket open).
    public var isRunning: Bool { shared.isRunning }

    public var statistics: Statistics { shared.withState { $0 } }

    /// Stops the monitor's thread, waiting at most `timeout` for it; whether it finished in time.
    /// Failures held back by the rate limit are reported before it ends.
    @discardableResult
    public func stop(timeout: Duration = .seconds(5)) -> Bool {
        shared.requestStop()
        return shared.waitUntilFinished(timeout: timeout.inSeconds)
    }

    /// How long one wait for events lasts before the stop flag and the rate limit are checked.
    static let pollInterval: Duration = .milliseconds(100)

    private static func watch(_ endpoint: String, context: ZmqContext, shared: Shared, limiter: HandshakeFailureLimiter,
                              onFailure: @Sendable (HandshakeFailure) -> Void) {
        defer { shared.finish(ifNeverStarted: .contextTerminated(operation: "handshake monitor")) }
        let socket: ZmqSocket
        do throws(ZmqError) {
            socket = try ZmqSocket(context, type: .pair)
            try socket.connect(endpoint)
        } catch {
            shared.started(.failure(error))
            return
        }
        defer { socket.close() }
        shared.started(.success(()))
        var tracker = HandshakeEventTracker()
        var limiter = limiter
        func report(_ failures: [HandshakeFailure]) {
            for failure in failures {
                shared.withState { $0.failed += 1 }
                for due in limiter.admit(failure, at: .now) {
                    shared.withState { $0.reports += 1 }
                    onFailure(due)
                }
            }
        }
        var monitorStopped = false
        while !shared.stopRequested && !monitorStopped {
            let events: [RawEvent]
            do throws(ZmqError) {
                guard try socket.wait(for: Int16(ZMQ_POLLIN), until: .now + pollInterval, "zmq_poll \(endpoint)") else {
                    // Quiet for a poll interval: a failure is not waiting for its disconnection any more.
                    report(tracker.flush())
                    for due in limiter.flush(at: .now) {
                        shared.withState { $0.reports += 1 }
                        onFailure(due)
                    }
                    continue
                }
                events = try drain(socket)
            } catch {
                break  // context terminated or socket broken: nothing more to read
            }
            for (position, event) in events.enumerated() {
                if event.code == ZMQ_EVENT_MONITOR_STOPPED { monitorStopped = true }
                if event.code == ZMQ_EVENT_ACCEPTED { shared.withState { $0.accepted += 1 } }
                let closedSince = events[(position + 1)...].contains { $0.code == ZMQ_EVENT_DISCONNECTED && $0.value == event.value }
                report(tracker.take(event.parsed(connectionClosedSince: closedSince)))
            }
        }
        report(tracker.flush())
        for due in limiter.flush(at: .now + limiter.interval) {
            shared.withState { $0.reports += 1 }
            onFailure(due)
        }
    }

    /// One event as libzmq's v1 monitor sends it: a 6-byte part (event, value) and the endpoint.
    struct RawEvent {
        var code: Int32
        var value: Int32
        var address: String

        init?(_ parts: [[UInt8]]) {
            guard parts.count == 2, parts[0].count == 6 else { return nil }
            // In the host's byte order (inproc: never leaves the process).
            code = Int32(parts[0].withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) })
            value = parts[0].withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: Int32.self) }
            address = String(decoding: parts[1], as: UTF8.self)
        }

        /// As the tracker takes it. An accepted connection's peer is asked of the kernel now,
        /// unless its disconnection is already among the events read (its descriptor may then
        /// be closed, or another connection's).
        func parsed(connectionClosedSince closed: Bool) -> HandshakeEventTracker.Event {
            switch code {
            case ZMQ_EVENT_ACCEPTED: .accepted(descriptor: value, peer: closed ? nil : peerAddress(of: value))
            case ZMQ_EVENT_DISCONNECTED: .disconnected(descriptor: value)
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: .handshakeFailed(.protocolError(code: value), endpoint: address)
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: .handshakeFailed(.authentication(status: value), endpoint: address)
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: .handshakeFailed(.noDetail(errno: value), endpoint: address)
            default: .other
            }
        }
    }

    /// Every event already queued (the first one is there: the socket was readable). libzmq
    /// stores the two parts of an event together, so the second is read without waiting.
    private static func drain(_ socket: ZmqSocket) throws(ZmqError) -> [RawEvent] {
        var events: [RawEvent] = []
        while try socket.wait(for: Int16(ZMQ_POLLIN), until: .now, "zmq_poll \(socket.endpoint)") {
            let parts = try socket.receiveParts(deadline: .now + .seconds(1), maxParts: 2).map(\.bytes)
            if let event = RawEvent(parts) { events.append(event) }
            if events.count >= 1024 { break }  // bounded: the rest waits for the next round
        }
        return events
    }
}

/// The remote end of the TCP connection `descriptor`, as "IP:port" or "[IPv6]:port"; nil when
/// it is not an open IP socket.
func peerAddress(of descriptor: Int32) -> String? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let found = withUnsafeMutablePointer(to: &storage) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) == 0 }
    }
    guard found else { return nil }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    switch Int32(storage.ss_family) {
    case AF_INET:
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address -> String? in
                var ip = address.pointee.sin_addr
                guard inet_ntop(AF_INET, &ip, &text, socklen_t(text.count)) != nil else { return nil }
                return "\(cText(text)):\(UInt16(bigEndian: address.pointee.sin_port))"
            }
        }
    case AF_INET6:
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address -> String? in
                var ip = address.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count)) != nil else { return nil }
                return "[\(cText(text))]:\(UInt16(bigEndian: address.pointee.sin6_port))"
            }
        }
    default:
        return nil
    }
}

private func cText(_ characters: [CChar]) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension HandshakeMonitor {
    /// What the owner and the monitor's thread share: its life and its counts.
    typealias Shared = ServiceThreadState<ZmqError, Statistics>
}
