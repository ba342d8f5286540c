import Foundation
import Logging
import Wire

/// The worker's end of the control plane: one dedicated thread owns the DEALER socket to the
/// coordinator (a socket belongs to one thread, DESIGN.md), sends what the training thread
/// queues, sends heartbeats on its own schedule (so a worker deep in BLAS still proves it is
/// alive) and queues what arrives for the training thread to take.
public final class ControlChannel: @unchecked Sendable {
    private let condition = NSCondition()
    private var outbox: [Message] = []
    private var inbox: [Envelope] = []
    private var stopping = false
    private var finished = false
    private var appliedStep: UInt64 = 0
    private var heartbeatInterval: Duration?
    /// Header fields of outgoing frames: the run id learnt from the coordinator and the generation.
    private var runID: UInt64 = 0
    private var generation: UInt64 = 0
    private var transportError: ZmqError?
    private var abort: String?
    private let fakeProtocolVersion: UInt16?
    private let logger: Logger

    /// Connects to `endpoint` on a new thread. `fakeProtocolVersion` (tests only) makes the
    /// first frame and the hello claim another protocol version.
    public init(endpoint: String, context: ZmqContext, fakeProtocolVersion: UInt16? = nil, logger: Logger) {
        self.fakeProtocolVersion = fakeProtocolVersion
        self.logger = logger
        let thread = Thread { [self] in serve(endpoint: endpoint, context: context) }
        thread.name = "scvae-control"
        thread.start()
    }

    /// Queues a message for the coordinator.
    public func send(_ message: Message) {
        locked { outbox.append(message); condition.broadcast() }
    }

    /// The next message from the coordinator, waiting at most `timeout`; nil at the timeout.
    public func receive(timeout: Duration) throws(ZmqError) -> Envelope? {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while inbox.isEmpty {
            if let transportError { throw transportError }
            if !condition.wait(until: deadline) { break }
        }
        return inbox.isEmpty ? nil : inbox.removeFirst()
    }

    /// The next message if one is waiting, without blocking.
    public func poll() -> Envelope? {
        locked { inbox.isEmpty ? nil : inbox.removeFirst() }
    }

    /// Set as soon as the coordinator aborts the run (read by the ring's liveness hook, which
    /// must not wait for the training thread to look at the inbox).
    public var abortReason: String? { locked { abort } }

    /// Heartbeats start (and carry the applied step) once the coordinator has said how often.
    public func startHeartbeats(every interval: Duration) { locked { heartbeatInterval = interval } }
    public func setApplied(step: UInt64) { locked { appliedStep = step } }
    public func setHeader(runID: UInt64, generation: UInt64) { locked { self.runID = runID; self.generation = generation } }

    /// Sends what is queued (waiting at most `flushTimeout`), then closes the socket.
    public func stop(flushTimeout: Duration = .seconds(2)) {
        locked { stopping = true; condition.broadcast() }
        let deadline = Date(timeIntervalSinceNow: flushTimeout.seconds + 1)
        condition.lock()
        while !finished { if !condition.wait(until: deadline) { break } }
        condition.unlock()
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    private func serve(endpoint: String, context: ZmqContext) {
        defer { locked { finished = true; condition.broadcast() } }
        let socket: ZmqSocket
        do {
            socket = try ZmqSocket(context, type: .dealer, linger: .seconds(2))
            try socket.connect(endpoint)
        } catch {
            locked { transportError = error; condition.broadcast() }
            return
        }
        defer { socket.close() }
        var sequence: UInt64 = 0
        var nextBeat = ContinuousClock.now
        while true {
            let (pending, header, interval, applied, stop) = locked {
                let pending = outbox
                outbox.removeAll()
                return (pending, (runID, generation), heartbeatInterval, appliedStep, stopping)
            }
            do throws(ZmqError) {
                for message in pending { try sendFrame(message, header: header, on: socket) }
                if let interval, ContinuousClock.now >= nextBeat {
                    sequence += 1
                    try sendFrame(.heartbeat(Heartbeat(sequence: sequence, lastAppliedStep: applied)), header: header, on: socket)
                    nextBeat = ContinuousClock.now + interval
                }
                if stop { return }
                let received = try? socket.receiveEnvelope(deadline: .now + .milliseconds(50))
                if let received {
                    switch received.envelope {
                    case let .success(envelope):
                        locked {
                            if case let .abort(body) = envelope.message { abort = body.reason }
                            inbox.append(envelope)
                            condition.broadcast()
                        }
                    case let .failure(error): logger.warning("dropped a bad frame from the coordinator: \(error)")
                    }
                }
            } catch {
                logger.error("control connection to \(endpoint) failed: \(error)")
                locked { transportError = error; condition.broadcast() }
                return
            }
        }
    }

    private func sendFrame(_ message: Message, header: (runID: UInt64, generation: UInt64), on socket: ZmqSocket) throws(ZmqError) {
        let deadline = ContinuousClock.now + .seconds(5)
        if let fakeProtocolVersion, case var .hello(hello) = message {
            hello.protocolVersion = fakeProtocolVersion
            try socket.send(Frame.encode(kind: .hello, generation: header.generation, runID: header.runID,
                                         payload: hello.encodedPayload(), version: fakeProtocolVersion), deadline: deadline)
            return
        }
        try socket.send(Envelope(generation: header.generation, runID: header.runID, message: message), deadline: deadline)
    }
}

extension Duration {
    /// This duration in seconds, as a Double.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
