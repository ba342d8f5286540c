import Foundation
import Logging
import Wire

/// The worker's end of the control plane: one dedicated thread owns the DEALER socket to the
/// coordinator (a socket belongs to one thread, docs/architecture.md), sends what the training thread
/// queues, sends heartbeats on its own schedule (so a worker deep in BLAS still proves it is
/// alive) and queues what arrives for the training thread to take.
public final class ControlChannel: @unchecked Sendable {
    private let condition = NSCondition()
    /// Messages to send, each with the header (run id, generation) current when it was queued.
    private var outbox: [(message: Message, header: (runID: UInt64, generation: UInt64))] = []
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
    /// When the coordinator was last heard from (any frame of the current run).
    private var lastHeard = ContinuousClock.now
    /// The newest generation an assignment has announced (read by the ring's liveness hook).
    private var announcedGeneration: UInt64 = 0
    /// Set when the coordinator says this worker is no longer a member (declared down).
    private var dropped = false
    /// Set when a welcome of another run arrives: a new coordinator took over.
    private var replaced = false
    private var heartbeatsPaused = false
    private let fakeProtocolVersion: UInt16?
    private let curve: (keys: CurveKeyPair, serverKey: String)?
    private let logger: Logger

    /// Connects to `endpoint` on a new thread. `fakeProtocolVersion` (tests only) makes the
    /// first frame and the hello claim another protocol version.
    /// With `curve`, the connection is a CURVE client of the coordinator's public key.
    public init(endpoint: String, context: ZmqContext, curve: (keys: CurveKeyPair, serverKey: String)? = nil,
                fakeProtocolVersion: UInt16? = nil, logger: Logger) {
        self.fakeProtocolVersion = fakeProtocolVersion
        self.logger = logger
        self.curve = curve
        let thread = Thread { [self] in serve(endpoint: endpoint, context: context) }
        thread.name = "scvae-control"
        thread.start()
    }

    /// Queues a message for the coordinator.
    public func send(_ message: Message) {
        locked { outbox.append((message, (runID, generation))); condition.broadcast() }
    }

    /// The next message from the coordinator, waiting at most `timeout`; nil at the timeout.
    public func receive(timeout: Duration) throws(ZmqError) -> Envelope? {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
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

    /// Puts a message taken with `poll`/`receive` back at the front, for the next reader.
    public func putBack(_ envelope: Envelope) {
        locked { inbox.insert(envelope, at: 0); condition.broadcast() }
    }

    /// Seconds since the coordinator was last heard from.
    public var coordinatorSilence: Double { locked { (ContinuousClock.now - lastHeard).inSeconds } }

    /// Whether generation `generation` may still go on: no newer assignment, no abort, not
    /// dropped from the run, and the coordinator heard from within `coordinatorDeadline`
    /// seconds. The ring's liveness hook asks this while it waits on a silent neighbour.
    public func generationIsCurrent(_ generation: UInt64, coordinatorDeadline: Double) -> Bool {
        locked {
            abort == nil && !dropped && !replaced && announcedGeneration <= generation
                && (ContinuousClock.now - lastHeard).inSeconds <= coordinatorDeadline
        }
    }

    /// How long the coordinator may be silent before the worker treats it as lost.
    private var coordinatorDeadline: Double = 3600
    public func setCoordinatorDeadline(_ seconds: Double) { locked { coordinatorDeadline = seconds } }

    /// The ring's liveness hook: whether the generation in the frame header (the one this worker
    /// runs) may still go on, so a silent neighbour is worth waiting for.
    public var runningGenerationIsCurrent: Bool {
        let (generation, deadline) = locked { (self.generation, coordinatorDeadline) }
        return generationIsCurrent(generation, coordinatorDeadline: deadline)
    }

    /// Forgets the previous coordinator's run: no run id, generation 0, heartbeats paused
    /// until the next welcome, the dropped flag and announced generation cleared.
    public func resetForNewCoordinator() {
        locked {
            runID = 0
            generation = 0
            announcedGeneration = 0
            dropped = false
            replaced = false
            abort = nil
            heartbeatsPaused = true
            coordinatorDeadline = 3600
            inbox.removeAll()
            lastHeard = ContinuousClock.now
        }
    }

    /// Set as soon as the coordinator aborts the run (read by the ring's liveness hook, which
    /// must not wait for the training thread to look at the inbox).
    public var abortReason: String? { locked { abort } }

    /// Heartbeats start (and carry the applied step) once the coordinator has said how often.
    public func startHeartbeats(every interval: Duration) { locked { heartbeatInterval = interval; heartbeatsPaused = false } }
    public func setApplied(step: UInt64) { locked { appliedStep = step } }
    public func setHeader(runID: UInt64, generation: UInt64) { locked { self.runID = runID; self.generation = generation } }

    /// A coordinator (the same or a new one) welcomed this worker into run `runID`: frames carry
    /// that run and generation 0 until an assignment; heartbeats start; the flags that ended
    /// earlier generations (dropped, replaced, aborted) are cleared.
    public func welcomed(runID: UInt64, heartbeatInterval: Duration, coordinatorDeadline: Double) {
        locked {
            if runID != self.runID { announcedGeneration = 0 }
            self.runID = runID
            generation = 0
            dropped = false
            replaced = false
            abort = nil
            self.heartbeatInterval = heartbeatInterval
            heartbeatsPaused = false
            self.coordinatorDeadline = coordinatorDeadline
            lastHeard = ContinuousClock.now
        }
    }

    /// Sends what is queued (waiting at most `flushTimeout`), then closes the socket.
    public func stop(flushTimeout: Duration = .seconds(2)) {
        locked { stopping = true; condition.broadcast() }
        let deadline = Date(timeIntervalSinceNow: flushTimeout.inSeconds + 1)
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
            // State transfers are hundreds of chunks: never block or drop them on a full queue.
            try socket.setHighWaterMarks(send: 0, receive: 0)
            if let curve { try socket.enableCurveClient(curve.keys, serverPublicKey: curve.serverKey) }
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
                return (pending, (runID, generation), heartbeatsPaused ? nil : heartbeatInterval, appliedStep, stopping)
            }
            do throws(ZmqError) {
                for queued in pending { try sendOrDrop(queued.message, header: queued.header, on: socket) }
                if let interval, ContinuousClock.now >= nextBeat {
                    sequence += 1
                    try sendOrDrop(.heartbeat(Heartbeat(sequence: sequence, lastAppliedStep: applied)), header: header, on: socket)
                    nextBeat = ContinuousClock.now + interval
                }
                if stop { return }
                let received = try? socket.receiveEnvelope(deadline: .now + .milliseconds(50))
                if let received {
                    switch received.envelope {
                    case let .success(envelope):
                        locked { accept(envelope) }
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

    /// Called with the lock held: notes what the liveness hooks need, then queues the message.
    /// Heartbeats only prove the coordinator alive; they are not queued.
    private func accept(_ envelope: Envelope) {
        if runID != 0 && envelope.runID != runID {
            // A frame of another coordinator incarnation (or a stale one of the previous). Only
            // its welcome and its refusals count: a new coordinator answered a hello sent earlier.
            switch envelope.message {
            case .welcome:
                replaced = true
            case let .refuse(body) where body.reason != .notMember:
                inbox.append(envelope)
                condition.broadcast()
                return
            default:
                return
            }
        }
        lastHeard = ContinuousClock.now
        switch envelope.message {
        case .heartbeat:
            return
        case let .abort(body):
            abort = body.reason
        case let .assignment(assignment):
            announcedGeneration = max(announcedGeneration, assignment.generation)
        case let .refuse(body) where body.reason == .notMember:
            dropped = true
        default:
            break
        }
        inbox.append(envelope)
        condition.broadcast()
    }

    /// Sends `message`; a send that times out (no coordinator to take it: the queue to it is
    /// full) drops the message with a warning instead of failing the channel, so a worker
    /// outlives a coordinator restart. Other transport errors are fatal.
    private func sendOrDrop(_ message: Message, header: (runID: UInt64, generation: UInt64), on socket: ZmqSocket) throws(ZmqError) {
        do {
            try sendFrame(message, header: header, on: socket)
        } catch .timedOut {
            logger.warning("dropped a \(message.kind) to the coordinator: not taken within 2 s (no connection: is the coordinator running, and does it admit this worker?)")
        }
    }

    private func sendFrame(_ message: Message, header: (runID: UInt64, generation: UInt64), on socket: ZmqSocket) throws(ZmqError) {
        let deadline = ContinuousClock.now + .seconds(2)
        if let fakeProtocolVersion, case var .hello(hello) = message {
            hello.protocolVersion = fakeProtocolVersion
            try socket.send(Frame.encode(kind: .hello, generation: header.generation, runID: header.runID,
                                         payload: hello.encodedPayload(), version: fakeProtocolVersion), deadline: deadline)
            return
        }
        try socket.send(Envelope(generation: header.generation, runID: header.runID, message: message), deadline: deadline)
    }
}

