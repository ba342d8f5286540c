import Foundation

/// A ZAP handler (ZeroMQ RFC 27) that admits CURVE clients whose public key is listed.
///
/// libzmq asks the handler bound at `inproc://zeromq.zap.01` of a socket's context about every
/// CURVE client, whether or not the server socket has a ZAP domain (libzmq 4.3, without the
/// draft option ZMQ_ZAP_ENFORCE_DOMAIN). With no handler bound it lets every client in that
/// knows the server's public key. Hence:
/// - set server sockets up with `ZmqSocket.enableCurveServer(_:authenticatedBy:)`, which
///   refuses a stopped authenticator or one of another context, and sets its ZAP domain;
/// - the authenticator also refuses clients of CURVE (or PLAIN) server sockets of its context
///   that were not set up that way (another domain): those fail closed, with a refusal report;
/// - close the guarded sockets before `stop()`.
///
/// The handler runs on its own thread with its own REP socket on the shared context; every
/// wait is bounded, and `stop()` returns within about a poll interval.
public final class ZapAuthenticator: @unchecked Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"

    public let domain: String
    let context: ZmqContext
    private let shared: Shared

    /// Binds the handler and starts its thread; returns once it answers requests.
    /// - Parameters:
    ///   - admitted: the client keys let in (see `AdmittedKeys.load(folder:excluding:)`).
    ///   - domain: the ZAP domain of the sockets it guards.
    ///   - onRefusal: called on the authenticator's thread for each refused peer, after the
    ///     refusal was sent; keep it short (log it, count it).
    ///   - grace: how long a CURVE client whose key is not (yet) admitted is held before the
    ///     refusal, in case `replaceAdmittedKeys` admits it meanwhile (a ring neighbour may
    ///     connect a moment before this worker learnt the run's keys). libzmq waits for the
    ///     answer (up to its 30 s handshake interval); requests are answered one at a time.
    public init(context: ZmqContext, admitted: AdmittedKeys, domain: String = "scvae", grace: Duration = .zero,
                onRefusal: @escaping @Sendable (ZapRefusal) -> Void = { _ in }) throws(ZapError) {
        guard (1...254).contains(domain.utf8.count) else { throw .invalidDomain(domain) }
        self.domain = domain
        self.context = context
        shared = Shared(HandlerState(keeper: ZapGatekeeper(domain: domain, admitted: admitted)))
        let shared = shared
        let thread = Thread { ZapAuthenticator.serve(context: context, shared: shared, grace: grace, onRefusal: onRefusal) }
        thread.name = "scvae-zap"
        thread.start()
        let startBound = 10.0
        switch shared.waitUntilStarted(timeout: startBound) {
        case .success: return
        case let .failure(error):
            shared.requestStop()
            throw error
        case nil:
            shared.requestStop()
            throw .didNotStart(seconds: startBound)
        }
    }

    deinit { stop() }

    /// Whether the handler answers requests (started and not stopped).
    public var isRunning: Bool { shared.isRunning }

    /// Replaces the admitted keys; clients already connected stay connected.
    public func replaceAdmittedKeys(_ keys: AdmittedKeys) { shared.withState { $0.keeper.admitted = keys } }

    public var statistics: ZapStatistics { shared.withState { $0.counters } }

    /// Stops the handler and unbinds it, waiting at most `timeout` for its thread.
    /// Returns whether the thread finished in time.
    @discardableResult
    public func stop(timeout: Duration = .seconds(5)) -> Bool {
        shared.requestStop()
        return shared.waitUntilFinished(timeout: timeout.inSeconds)
    }

    /// How long one wait for a request lasts before the stop flag is checked again.
    static let pollInterval: Duration = .milliseconds(100)

    private static func serve(context: ZmqContext, shared: Shared, grace: Duration, onRefusal: @Sendable (ZapRefusal) -> Void) {
        defer { shared.finish(ifNeverStarted: .stopped) }
        let socket: ZmqSocket
        do throws(ZmqError) {
            socket = try ZmqSocket(context, type: .rep)
            try socket.bind(endpoint)
        } catch {
            if case let .call(_, number, _) = error, number == EADDRINUSE {
                shared.started(.failure(.handlerAlreadyBound))
            } else {
                shared.started(.failure(.socket(error)))
            }
            return
        }
        defer {
            // Unbound before closing, so that once stop() returns the next handler can bind.
            try? socket.unbind(endpoint)
            socket.close()
        }
        shared.started(.success(()))
        while !shared.stopRequested {
            let frames: [[UInt8]]
            do throws(ZmqError) {
                frames = try socket.receiveParts(deadline: .now + pollInterval).map(\.bytes)
            } catch .timedOut {
                continue
            } catch .tooManyParts(_, let parts, _) {
                frames = Array(repeating: [], count: parts)   // answered as malformed below
            } catch {
                return   // context terminated or socket broken: nothing more to serve
            }
            var decision = shared.withState { $0.keeper }.decide(frames)
            let held = ContinuousClock.now
            while decision.refusal?.reason == .keyNotAdmitted && ContinuousClock.now - held < grace && !shared.stopRequested {
                Thread.sleep(forTimeInterval: 0.02)
                decision = shared.withState { $0.keeper }.decide(frames)
            }
            do throws(ZmqError) {
                try socket.send(parts: decision.reply.frames, deadline: .now + .seconds(1))
            } catch {
                return   // a REP socket that cannot answer cannot serve the next request
            }
            shared.withState { if decision.refusal == nil { $0.counters.admitted += 1 } else { $0.counters.refused += 1 } }
            if let refusal = decision.refusal { onRefusal(refusal) }
        }
    }
}

extension ZapAuthenticator {
    /// What the owner and the handler thread share: the gatekeeper (its admitted keys can be
    /// replaced while the handler runs) and the counts.
    struct HandlerState {
        var keeper: ZapGatekeeper
        var counters = ZapStatistics()
    }

    typealias Shared = ServiceThreadState<ZapError, HandlerState>
}
