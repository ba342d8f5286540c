import Data
import Foundation
import Logging
import Model
import Wire

/// The worker's shell: joins a coordinator, runs the generations it is assigned, serves state
/// uploads and restores, and outlives failures around it. Runs on one dedicated thread (BLAS and
/// ring waits block; DECISIONS.md), with the control channel and the collectives on threads of
/// their own.
///
/// Control protocol, worker side:
/// 1. hello (repeated with backoff while no coordinator answers, up to --reconnect-timeout) ->
///    welcome (heartbeats start) or refuse (exit non-zero with the coordinator's reason);
/// 2. assignment of generation g -> ring formed, state agreed and broadcast (from the seed, a
///    checkpoint the coordinator sent, or the most advanced replica), a `WorkerStatus` with the
///    starting checksum, then one `StepReport` per step; rank 0 uploads its state at checkpoint
///    steps. A newer assignment, a ring failure or a silent coordinator ends the generation at
///    once; the replica keeps the last step it applied (the update happens only after the
///    all-gather completed) and the next generation starts from the most advanced replica;
/// 3. after the last step a `WorkerStatus` with the final checksum; the worker serves
///    `CheckpointCommand.upload` until a `Shutdown`, whose exit code it exits with;
/// 4. a lost coordinator (silent past the deadline): back to 1, keeping the replica; a
///    `Refuse(.notMember)` (declared down while alive): back to 1 with the same coordinator.
///    An `Abort` ends the worker.
final class WorkerSession {
    let settings: WorkerSettings
    var logger: Logger
    let context: ZmqContext
    let control: ControlChannel
    let workerID: String
    private let state = ReplicaState()
    private var restore = RestoreReceiver()
    private var dataOrderLog: DataOrderLog?
    /// The last generation this worker ran (assignments of older ones are stale).
    private var lastGeneration: UInt64 = 0
    private var currentRunID: UInt64 = 0
    /// Where the last finished generation left the sampler (for the final upload's epoch).
    private var lastEpoch = 0

    /// What ended the service of one coordinator.
    private enum ServiceEnd {
        case exit(Int32)
        case coordinatorLost(String)
        case rejoin
    }

    /// With --curve-keys: this worker's key pair, the coordinator's public key, and the ZAP
    /// handler of the ring's receiving socket (admitting the previous rank's key only).
    let curve: (keys: CurveKeyPair, coordinatorKey: String)?
    private var ringAuthenticator: ZapAuthenticator?

    init(settings: WorkerSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        context = try ZmqContext()
        if let folder = settings.curveKeys {
            do {
                curve = (try CurveKeyFolder.ownKeyPair(in: folder), try CurveKeyFolder.peerPublicKey(in: folder, name: "coordinator"))
            } catch {
                throw WorkerFailure.curve("--curve-keys \(folder): \(error)")
            }
        } else {
            curve = nil
        }
        control = ControlChannel(endpoint: settings.coordinator, context: context,
                                 curve: curve.map { ($0.keys, $0.coordinatorKey) },
                                 fakeProtocolVersion: settings.fakeProtocolVersion, logger: logger)
        workerID = settings.workerID ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    /// Runs the session; returns the exit code the coordinator asked for, or 1 after a failure,
    /// which is logged (with this worker's rank and generation once it has them) and also sent
    /// to the coordinator as an `Abort`, so the run ends with its reason.
    func run() -> Int32 {
        defer {
            control.stop()
            ringAuthenticator?.stop()
            // Inboxes of neighbours killed before this rank attached (its own are gone by now).
            SharedMemoryEndpoint.removeStaleSegments()
        }
        do {
            return try session()
        } catch {
            logger.error("\(error)")
            switch error as? WorkerFailure {
            case .refused?, .aborted?, .coordinatorSilent?: break
            default: control.send(.abort(Abort(reason: "worker \(workerID): \(error)")))
            }
            return 1
        }
    }

    private func session() throws -> Int32 {
        let index = try DatasetLocation.resolve(dataPath: settings.dataPath, cacheDirectory: settings.cacheDirectory)
        logger.debug("dataset \(index.root): \(index.count) images, fingerprint \(index.fingerprint.prefix(16))")
        if let path = settings.dataOrderLogPath {
            do { dataOrderLog = try DataOrderLog(path: path) } catch { throw WorkerFailure.cannotWrite(path: path, reason: "\(error)") }
        }
        let collectives = try openRing()
        defer { _ = try? collectives.wait(collectives.stop(), timeout: .seconds(10)) }
        ring = collectives
        let dataEndpoint = collectives.endpoint
        let sharedMemoryHost = SharedMemoryHost.current()
        let capabilities = (curve == nil ? [] : ["curve"]) + (sharedMemoryHost == nil ? [] : [SharedMemoryHost.capability])
        let hello = Hello(workerID: workerID, host: ProcessInfo.processInfo.hostName,
                          dataPlaneEndpoint: dataEndpoint, capabilities: capabilities,
                          datasetFingerprint: index.fingerprint, curvePublicKey: curve?.keys.publicKey,
                          sharedMemoryHost: sharedMemoryHost ?? "")
        logger.info("worker \(workerID): coordinator \(settings.coordinator), data plane \(dataEndpoint)\(sharedMemoryHost == nil ? "" : " or shared memory"), dataset of \(index.count) images")
        while true {
            guard let (runID, deadline) = try join(hello) else { return 0 }
            if runID != currentRunID {
                // Generations count afresh under each coordinator (incarnation).
                currentRunID = runID
                lastGeneration = 0
            }
            switch try serve(runID: runID, coordinatorDeadline: deadline, index: index, dataEndpoint: dataEndpoint) {
            case let .exit(code):
                return code
            case let .coordinatorLost(reason):
                logger.warning("lost the coordinator (\(reason)); keeping the replica of step \(state.appliedStep) and saying hello again")
                control.resetForNewCoordinator()
            case .rejoin:
                logger.warning("the coordinator declared this worker down; saying hello again")
                control.resetForNewCoordinator()
            }
        }
    }

    /// Says hello until a coordinator answers: the run id and the coordinator-silence deadline
    /// on a welcome, nil when the coordinator ends the run at once. Retries with backoff for
    /// --reconnect-timeout; a refusal ends the worker.
    private func join(_ hello: Hello) throws -> (UInt64, Double)? {
        let giveUp = ContinuousClock.now + .milliseconds(Int(settings.reconnectTimeoutSeconds * 1000))
        var backoff = 0.5
        while true {
            control.send(.hello(hello))
            let wait = ContinuousClock.now + .milliseconds(Int(backoff * 1000))
            while ContinuousClock.now < wait {
                let envelope: Envelope?
                do { envelope = try control.receive(timeout: wait - ContinuousClock.now) } catch { throw WorkerFailure.control(error) }
                guard let envelope else { break }
                switch envelope.message {
                case let .welcome(body):
                    control.setHeader(runID: envelope.runID, generation: 0)
                    control.startHeartbeats(every: .milliseconds(Int(max(body.heartbeatIntervalMilliseconds, 50))))
                    let deadline = max(2 * Double(body.livenessDeadlineMilliseconds) / 1000, 5)
                    control.setCoordinatorDeadline(deadline)
                    try admitRingPeers(body.admittedCurveKeys)
                    logger.info("welcomed by the coordinator (run \(String(envelope.runID, radix: 16)))")
                    return (envelope.runID, deadline)
                case let .refuse(body) where body.reason != .notMember:
                    throw WorkerFailure.refused(reason: body.reason, detail: body.detail)
                case let .shutdown(body) where body.reason != TrainingRecipe.stopRequestReason:
                    logger.notice("the coordinator ended the run: \(body.reason)")
                    return nil
                default:
                    logger.debug("ignored \(envelope.message.kind) while saying hello")
                }
            }
            if ContinuousClock.now > giveUp {
                throw WorkerFailure.coordinatorSilent(endpoint: settings.coordinator, seconds: settings.reconnectTimeoutSeconds,
                                                      waitingFor: "a welcome")
            }
            backoff = min(backoff * 2, 5)
        }
    }

    /// Serves one coordinator: its assignments, restores and upload requests, until it ends
    /// the run, goes silent, or drops this worker.
    private func serve(runID: UInt64, coordinatorDeadline: Double, index: TrainingData, dataEndpoint: String) throws -> ServiceEnd {
        while true {
            let envelope: Envelope?
            do { envelope = try control.receive(timeout: .milliseconds(250)) } catch { throw WorkerFailure.control(error) }
            guard let envelope else {
                let silence = control.coordinatorSilence
                if silence > coordinatorDeadline { return .coordinatorLost("silent for \(Int(silence)) s") }
                continue
            }
            switch envelope.message {
            case let .assignment(assignment) where assignment.generation > lastGeneration:
                lastGeneration = assignment.generation
                let run = GenerationRun(assignment: assignment, runID: runID, session: self, index: index,
                                        dataEndpoint: dataEndpoint, coordinatorDeadline: coordinatorDeadline)
                switch try run.execute() {
                case let .finished(_, cursor):
                    lastEpoch = cursor.epoch
                case .interrupted(reason: .newGeneration):
                    logger.notice("generation \(assignment.generation) ended: a new generation was announced")
                case .interrupted(reason: .droppedFromRun):
                    return .rejoin
                case let .interrupted(reason: .coordinatorLost(seconds)):
                    return .coordinatorLost("silent for \(Int(seconds)) s")
                case let .interrupted(reason: .ringFailed(step, reason, peer)):
                    // The coordinator decides: a new generation (without a dead peer) follows.
                    logger.warning("generation \(assignment.generation) broke in step \(step): \(reason)")
                    control.send(.abort(Abort(failedRank: peer.map { UInt32($0) }, reason: "ring failed in step \(step): \(reason)")))
                case let .interrupted(reason: .transportUnavailable(reason)):
                    // This rank failed; the coordinator gives this worker TCP rings from now on.
                    control.send(.abort(Abort(failedRank: assignment.rank, reason: "cannot set up the \(reason)",
                                              ringTransportUnavailable: true)))
                }
            case .assignment:
                logger.debug("ignored an assignment of an old generation")
            case let .tensorChunk(chunk):
                do { try restore.add(chunk) } catch { throw WorkerFailure.restore("\(error)") }
            case let .checkpoint(command) where command.action == .restore:
                do { try restore.finish(command) } catch { throw WorkerFailure.restore("\(error)") }
            case let .checkpoint(command) where command.action == .upload:
                guard let replica = state.replica, state.runID == runID else {
                    logger.warning("asked to upload the state of step \(command.step) with no replica of this run")
                    continue
                }
                StateTransfer.upload(replica, layout: replica.model.layout, step: state.appliedStep, epoch: lastEpoch, control: control)
                logger.info("uploaded the state of step \(state.appliedStep)")
            case let .refuse(body) where body.reason == .notMember:
                return .rejoin
            case .welcome:
                logger.debug("ignored a repeated welcome")
            case let .shutdown(body) where body.reason == TrainingRecipe.stopRequestReason:
                // A stop request that arrived after this rank stopped (through a neighbour's
                // request, or at the last step): the end of the run is still to come.
                logger.debug("stop request arrived after training ended")
            case let .shutdown(body):
                logger.info("shutdown: \(body.reason)")
                return .exit(body.exitCode)
            case let .abort(body):
                throw WorkerFailure.aborted(reason: body.reason)
            default:
                logger.debug("ignored \(envelope.message.kind)")
            }
        }
    }

    /// The TCP ring communicator of this process, on its own thread: its receiving socket binds
    /// port 0 of --host once, and that endpoint (announced in the hello) serves every TCP
    /// generation; each assignment gives it a new rank and next neighbour. Generations on
    /// shared memory make a ring of their own (`GenerationRing`).
    private func openRing() throws -> CollectiveThread {
        let context = self.context, control = self.control, logger = self.logger, host = settings.host
        let stalls = StallReporter(every: 10)
        if let curve {
            do {
                // Until an assignment names the previous rank, only the coordinator's key is admitted.
                ringAuthenticator = try ZapAuthenticator(context: context, admitted: try AdmittedKeys([curve.coordinatorKey: "coordinator"]),
                                                         grace: .seconds(5), onRefusal: { logger.warning("ring: refused a connection: \($0)") })
            } catch {
                throw WorkerFailure.curve("cannot start the ring's authenticator: \(error)")
            }
        }
        let ringSettings = RingSettings(
            silenceDeadline: .milliseconds(250),
            // A silent neighbour is waited for while this worker's generation is current: slow
            // is not dead (DECISIONS.md); the coordinator, which hears every worker's
            // heartbeats, replaces the generation when a worker is really gone.
            isPeerAlive: { _ in control.runningGenerationIsCurrent },
            onStall: { rank, waited in
                if stalls.due(waited) { logger.warning("ring: rank \(rank) silent for \(Int(waited.inSeconds)) s (alive per the coordinator); still waiting") }
            },
            curveKeys: curve?.keys, curveAuthenticator: ringAuthenticator)
        self.ringSettings = ringSettings
        do {
            return try CollectiveThread {
                () throws(RingError) -> RingCommunicator in
                try RingCommunicator(context: context, rank: 0, worldSize: 1, runID: 0,
                                     bindTo: "tcp://\(host):*", settings: ringSettings)
            }
        } catch {
            throw WorkerFailure.ring(step: 0, error)
        }
    }

    // MARK: For GenerationRun

    var replicaState: ReplicaState { state }
    private(set) var ring: CollectiveThread?
    /// The settings of the session's ring, for the shared-memory rings of generations as well
    /// (the same deadlines and liveness rules).
    private(set) var ringSettings: RingSettings?

    /// Admits the run's workers (from the welcome) on the ring's socket: set before any
    /// assignment, so a neighbour is never refused for connecting early.
    private func admitRingPeers(_ keys: [String]) throws {
        guard let ringAuthenticator else { return }
        guard !keys.isEmpty else { throw WorkerFailure.curve("CURVE is on but the coordinator's welcome lists no worker keys") }
        do {
            ringAuthenticator.replaceAdmittedKeys(try AdmittedKeys(Dictionary(keys.map { ($0, "worker") }, uniquingKeysWith: { a, _ in a })))
        } catch {
            throw WorkerFailure.curve("the run's worker keys: \(error)")
        }
    }

    var log: DataOrderLog? { dataOrderLog }

    /// The state the coordinator restored, for the state-source rank of a `.checkpoint` generation.
    func takeRestoredState() -> RestoreReceiver.Restored? { restore.take() }
}

/// Says when a stall is worth a log line: at the first multiple of `every` seconds waited and
/// then every `every` seconds, not at every short silence deadline of the ring.
final class StallReporter: @unchecked Sendable {
    private let every: Double
    private let lock = NSLock()
    private var reported = 0

    init(every: Double) { self.every = every }

    func due(_ waited: Duration) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let periods = Int(waited.inSeconds / every)
        if periods == 0 { reported = 0; return false }
        guard periods > reported else { return false }
        reported = periods
        return true
    }
}

