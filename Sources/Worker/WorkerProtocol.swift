import Logging
import Wire

/// The worker's side of the control protocol as a value with no I/O: `WorkerSession` (the shell)
/// feeds it the coordinator's messages, the time and how each generation ended, and carries out
/// the directives it returns. While a generation runs, the training thread asks the session
/// between steps, which feeds what arrived to this machine; a `.interrupt` directive ends the
/// generation there.
///
/// Phases and messages (docs/protocol.md has the full table):
/// - `joining`: hello with backoff, until a welcome (`idle`), a refusal (exit non-zero; a duplicate
///   id or a full run is retried), or --reconnect-timeout (exit non-zero, the one way a silent
///   coordinator ends a worker);
/// - `idle`: welcomed; an assignment of a newer generation starts it (`training`);
/// - `training`: a newer assignment, a refusal as non-member, a new coordinator's welcome or the
///   coordinator's silence end the generation; a stop request rides in the next step's
///   all-reduce; restore chunks are kept for the generation that needs them;
/// - `finished`: the last step is done; uploads are served until the run's shutdown; a newer
///   assignment (a rank died during the upload) starts a generation again;
/// - `exiting`: a shutdown, an abort or an unrecoverable failure.
/// The replica survives every phase but `exiting`: a lost coordinator or membership is never a
/// reason to drop it.
struct WorkerProtocol {
    enum Phase: Equatable {
        case joining
        case idle
        case training(generation: UInt64)
        case finished
        case exiting(code: Int32)
    }

    /// Why the running generation must end now.
    enum Interruption: Equatable, CustomStringConvertible {
        case newGeneration
        case droppedFromRun
        case coordinatorLost(seconds: Double)
        case coordinatorReplaced
        case shutdown(code: Int32)

        var description: String {
            switch self {
            case .newGeneration: "a new generation was announced"
            case .droppedFromRun: "the coordinator declared this worker down"
            case let .coordinatorLost(seconds): "no word from the coordinator for \(Int(seconds)) s"
            case .coordinatorReplaced: "a new coordinator answered"
            case let .shutdown(code): "the run ended (status \(code))"
            }
        }
    }

    /// How a generation ended, as the training thread reports it.
    enum GenerationEnd: Equatable {
        /// The last step of the run, or an agreed stop.
        case finished
        /// Ended by this machine's `.interrupt`.
        case interrupted
        /// The ring broke (`peer`: the neighbour it names).
        case ringFailed(step: Int, reason: String, peer: Int?)
        /// The connection to the next rank (`peer`, alive per the coordinator) never came up:
        /// its ring address is unreachable from here.
        case nextRankUnreachable(peer: Int, reason: String)
        /// This worker could not set up the generation's ring transport.
        case transportUnavailable(reason: String)
        /// The state the assignment named is not here (no restore, no replica anywhere).
        case stateMissing(reason: String)
        /// The run cannot go on (non-finite losses in a row, unreadable data).
        case runCannotContinue(reason: String)
        /// This worker cannot go on (an unusable assignment, a file it cannot write).
        case workerFailed(reason: String)
    }

    enum Directive: Equatable {
        /// Say hello (this is join number `joins` of this process).
        case sendHello(joins: UInt32)
        /// Welcomed by run `runID`: heartbeats every `heartbeat` s; the coordinator counts as lost
        /// after `deadline` s of silence; the ring admits `ringKeys` (CURVE).
        case welcomed(runID: UInt64, heartbeat: Double, deadline: Double, ringKeys: [String])
        /// Forget the coordinator's run (its header, heartbeats, queued messages).
        case forgetCoordinator
        case runGeneration(Assignment)
        case interrupt(Interruption)
        /// Upload the replica's state; `step`: the step the coordinator asked for.
        case upload(step: Int)
        case send(Message)
        case log(Logger.Level, String)
        /// End the process with `code`; `reason` (an error) is logged when given.
        case exit(code: Int32, reason: String?)
    }

    /// Fixed settings.
    let reconnectTimeout: Double
    let longestBackoff = 5.0

    private(set) var phase = Phase.joining
    private(set) var runID: UInt64 = 0
    /// How many times this process started to join; the current hello carries it.
    private(set) var joins: UInt32 = 0
    private(set) var lastGeneration: UInt64 = 0
    /// A newer assignment that ended the running generation, started when that one has ended.
    private(set) var pending: Assignment?
    private(set) var stopRequested = false
    /// An `.interrupt` was given for the running generation: however it ends, it ended for that.
    private(set) var interruptGiven = false
    private(set) var restore = RestoreStash()
    private var coordinatorDeadline = 3600.0
    private var joinStartedAt = 0.0
    private var nextHelloAt = 0.0
    private var backoff = 0.5
    private var duplicateRefusals = 0
    private var outbox: [Directive] = []

    init(reconnectTimeout: Double, now: Double) {
        self.reconnectTimeout = reconnectTimeout
        startJoining(now: now)
    }

    // MARK: Events

    /// A message from the coordinator (the control channel has dropped frames of other runs,
    /// welcomes excepted, and heartbeats).
    mutating func received(_ envelope: Envelope, now: Double) -> [Directive] {
        switch envelope.message {
        case let .welcome(body):
            welcome(body, runID: envelope.runID, now: now)
        case let .refuse(body):
            refused(body, now: now)
        case let .assignment(assignment):
            assigned(assignment, runID: envelope.runID)
        case let .tensorChunk(chunk) where envelope.runID == runID:
            do { try restore.add(chunk, generation: envelope.generation) } catch {
                emit(.log(.warning, "\(error); dropped (the coordinator sends it again if it is needed)"))
            }
        case let .checkpoint(command) where envelope.runID == runID && command.action == .restore:
            do { try restore.finish(command, generation: envelope.generation) } catch {
                emit(.log(.warning, "\(error); dropped (the coordinator sends it again if it is needed)"))
            }
        case let .checkpoint(command) where envelope.runID == runID && command.action == .upload:
            switch phase {
            case .idle, .finished: emit(.upload(step: Int(command.step)))
            default: emit(.log(.warning, "asked to upload the state of step \(command.step) while \(phase); ignored"))
            }
        case .stopRequest where envelope.runID == runID:
            if !stopRequested, case .training = phase { emit(.log(.notice, "stop requested; stopping at the next step boundary")) }
            stopRequested = true
        case let .shutdown(body) where envelope.runID == runID:
            emit(.log(.info, "shutdown: \(body.reason)"))
            exit(code: body.exitCode, reason: nil, interruption: .shutdown(code: body.exitCode))
        case let .abort(body) where envelope.runID == runID:
            exit(code: 1, reason: "the coordinator aborted the run: \(body.reason)", interruption: .shutdown(code: 1))
        default:
            emit(.log(.debug, "ignored \(envelope.message.kind) while \(phase)"))
        }
        return drain()
    }

    /// Time passed; `coordinatorSilence`: seconds since the coordinator was last heard.
    mutating func tick(now: Double, coordinatorSilence: Double) -> [Directive] {
        switch phase {
        case .joining:
            if now - joinStartedAt > reconnectTimeout {
                emit(.exit(code: 1, reason: "no welcome from the coordinator in \(Int(reconnectTimeout)) s (--reconnect-timeout): is it running, is its address right, and does it admit this worker?"))
                phase = .exiting(code: 1)
            } else if now >= nextHelloAt {
                emit(.sendHello(joins: joins))
                nextHelloAt = now + backoff
                backoff = min(backoff * 2, longestBackoff)
            }
        case .idle, .training, .finished:
            if coordinatorSilence > coordinatorDeadline {
                let seconds = coordinatorSilence
                interruptIfTraining(.coordinatorLost(seconds: seconds))
                emit(.log(.warning, "lost the coordinator (silent for \(Int(seconds)) s); keeping the replica and saying hello again"))
                emit(.forgetCoordinator)
                startJoining(now: now)
            }
        case .exiting:
            break
        }
        return drain()
    }

    /// The training thread finished running a generation.
    mutating func generationEnded(_ end: GenerationEnd, now: Double) -> [Directive] {
        guard case let .training(generation) = phase else {
            // Already moved on by an interruption (joining, exiting): only start what is pending.
            startPendingIfIdle()
            return drain()
        }
        var end = end
        if interruptGiven, end != .finished, !Self.isWorkerFailure(end) { end = .interrupted }
        switch end {
        case .finished:
            phase = .finished
        case .interrupted:
            phase = .idle
        case let .ringFailed(step, reason, peer):
            emit(.log(.warning, "generation \(generation) broke in step \(step): \(reason)"))
            emit(.send(.abort(Abort(failedRank: peer.map { UInt32($0) }, reason: "ring failed in step \(step): \(reason)", cause: .ringFailed))))
            phase = .idle
        case let .nextRankUnreachable(peer, reason):
            emit(.log(.warning, "generation \(generation) cannot form its ring: \(reason)"))
            emit(.send(.abort(Abort(failedRank: UInt32(peer), reason: reason, cause: .ringUnreachable))))
            phase = .idle
        case let .transportUnavailable(reason):
            emit(.send(.abort(Abort(reason: "cannot set up the \(reason)", cause: .ringTransportUnavailable))))
            phase = .idle
        case let .stateMissing(reason):
            emit(.log(.warning, "generation \(generation) cannot start: \(reason); asking the coordinator for a new generation"))
            emit(.send(.abort(Abort(reason: reason, cause: .stateMissing))))
            phase = .idle
        case let .runCannotContinue(reason):
            emit(.log(.error, reason))
            emit(.send(.abort(Abort(reason: reason, cause: .runCannotContinue))))
            phase = .idle
        case let .workerFailed(reason):
            emit(.send(.abort(Abort(reason: reason, cause: .workerFailed))))
            exit(code: 1, reason: reason, interruption: nil)
        }
        startPendingIfIdle()
        return drain()
    }

    // MARK: Transitions

    private mutating func welcome(_ body: Welcome, runID newRun: UInt64, now: Double) {
        switch phase {
        case .joining:
            break
        case .idle, .training, .finished:
            guard newRun != runID else {
                emit(.log(.debug, "ignored a repeated welcome"))
                return
            }
            // A new coordinator answered a hello this worker sent before: its predecessor is gone.
            interruptIfTraining(.coordinatorReplaced)
        case .exiting:
            return
        }
        if newRun != runID {
            // Generations count afresh under each coordinator incarnation.
            restore.forget()
            lastGeneration = 0
            pending = nil
            stopRequested = false
        }
        runID = newRun
        if case .training = phase {} else { phase = .idle }
        duplicateRefusals = 0
        coordinatorDeadline = max(2 * Double(body.livenessDeadlineMilliseconds) / 1000, 5)
        emit(.welcomed(runID: newRun, heartbeat: max(Double(body.heartbeatIntervalMilliseconds), 50) / 1000,
                       deadline: coordinatorDeadline, ringKeys: body.admittedCurveKeys))
        emit(.log(.info, "welcomed by the coordinator (run \(String(newRun, radix: 16)))"))
    }

    private mutating func refused(_ body: Refuse, now: Double) {
        switch body.reason {
        case .notMember:
            guard phase != .joining else { return }
            interruptIfTraining(.droppedFromRun)
            emit(.log(.warning, "the coordinator declared this worker down; saying hello again"))
            startJoining(now: now)
        case .duplicateWorkerID, .runFull:
            // Both clear by themselves: a crashed predecessor (or the worker this one replaces)
            // is declared down within the liveness deadline. Asked again, until --reconnect-timeout.
            guard phase == .joining else { return }
            duplicateRefusals += 1
            if duplicateRefusals == 1 || duplicateRefusals % 10 == 0 {
                emit(.log(.warning, "refused: \(body.detail); retrying (\(duplicateRefusals) refusals so far, until --reconnect-timeout)"))
            }
        default:
            exit(code: 1, reason: "refused by the coordinator (\(body.reason)): \(body.detail)", interruption: .shutdown(code: 1))
        }
    }

    private mutating func assigned(_ assignment: Assignment, runID assignmentRun: UInt64) {
        guard assignmentRun == runID, assignment.generation > lastGeneration else {
            emit(.log(.debug, "ignored an assignment of generation \(assignment.generation) (run \(String(assignmentRun, radix: 16)))"))
            return
        }
        lastGeneration = assignment.generation
        switch phase {
        case .training:
            pending = assignment
            interruptIfTraining(.newGeneration)
        case .idle, .finished:
            pending = assignment
            startPendingIfIdle()
        case .joining, .exiting:
            break
        }
    }

    private static func isWorkerFailure(_ end: GenerationEnd) -> Bool {
        if case .workerFailed = end { return true }
        return false
    }

    private mutating func startPendingIfIdle() {
        switch phase {
        case .idle, .finished: break
        default: return
        }
        guard let next = pending else { return }
        pending = nil
        interruptGiven = false
        phase = .training(generation: next.generation)
        emit(.runGeneration(next))
    }

    private mutating func startJoining(now: Double) {
        phase = .joining
        joins += 1
        joinStartedAt = now
        nextHelloAt = now
        backoff = 0.5
        pending = nil
    }

    private mutating func interruptIfTraining(_ interruption: Interruption) {
        guard case .training = phase else { return }
        interruptGiven = true
        emit(.interrupt(interruption))
    }

    private mutating func exit(code: Int32, reason: String?, interruption: Interruption?) {
        if let interruption { interruptIfTraining(interruption) }
        emit(.exit(code: code, reason: reason))
        phase = .exiting(code: code)
    }

    // MARK: For the generation

    /// Takes the complete restore of `step` sent for `generation` (the state-source rank of a
    /// `.checkpoint` generation).
    mutating func takeRestore(step: Int, generation: UInt64) -> RestoreStash.Restored? {
        restore.take(step: step, generation: generation)
    }

    private mutating func emit(_ directive: Directive) { outbox.append(directive) }

    private mutating func drain() -> [Directive] {
        defer { outbox.removeAll() }
        return outbox
    }
}
