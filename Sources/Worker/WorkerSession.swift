import Dataset
import Foundation
import Logging
import Model
import Wire

/// The worker's shell: feeds `WorkerProtocol` what the coordinator sends and the time, and
/// carries out what it decides: hellos, the control channel's settings, generations (run here,
/// on this thread: BLAS and ring waits block), uploads, the exit. The control channel and the
/// collectives run on threads of their own.
final class WorkerSession {
    let settings: WorkerSettings
    var logger: Logger
    let context: ZmqContext
    let control: ControlChannel
    let workerID: String
    /// Drawn once per process: the coordinator tells this process from another with the same id.
    let instance = UInt64.random(in: 1...UInt64.max)
    private let state = ReplicaState()
    private var machine: WorkerProtocol
    private var dataOrderLog: DataOrderLog?
    /// The sampler's epoch after the last finished generation (the final upload's epoch).
    private var lastEpoch = 0
    /// Set while a generation runs, when the machine said it must end.
    private var interrupted = false
    /// An exit the machine decided while a generation ran, carried out once it has returned.
    private var pendingExit: (code: Int32, reason: String?)?
    private let clockStart = ContinuousClock.now
    private var index: TrainingData?
    private var hello: Hello?
    /// The validation set and its model, kept across generations of one plan and configuration.
    private var validator: Validator?

    /// With --curve-keys: this worker's key pair, the coordinator's public key, and the ZAP
    /// handler of the ring's receiving socket (admitting the run's worker keys only).
    let curve: (keys: CurveKeyPair, coordinatorKey: String)?
    private var ringAuthenticator: ZapAuthenticator?
    private(set) var ring: CollectiveThread?
    /// The settings of the session's ring, for the shared-memory rings of generations as well.
    private(set) var ringSettings: RingSettings?

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
        machine = WorkerProtocol(reconnectTimeout: settings.reconnectTimeoutSeconds, now: 0)
    }

    private var now: Double { (ContinuousClock.now - clockStart).inSeconds }

    /// Runs the session; returns the exit code the coordinator asked for, or 1 after a failure
    /// (logged, with this worker's rank and generation once it has them).
    func run() -> Int32 {
        defer {
            control.stop()
            ringAuthenticator?.stop()
            // Inboxes of neighbours killed before this rank attached (its own are gone by now).
            SharedMemoryEndpoint.removeStaleSegments()
        }
        do {
            try prepare()
        } catch {
            logger.error("\(error)")
            return 1
        }
        defer { if let ring { _ = try? ring.wait(ring.stop(), timeout: .seconds(10)) } }
        while true {
            if let code = carryOut(machine.tick(now: now, coordinatorSilence: control.coordinatorSilence)) { return code }
            let envelope: Envelope?
            do {
                envelope = try control.receive(timeout: .milliseconds(100))
            } catch {
                logger.error("control connection to \(settings.coordinator) failed: \(error)")
                return 1
            }
            if let envelope, let code = carryOut(machine.received(envelope, now: now)) { return code }
        }
    }

    /// The dataset, the data-order log, the ring's receiving socket and the hello.
    private func prepare() throws {
        let index = try DatasetLocation.resolve(dataPath: settings.dataPath, cacheDirectory: settings.cacheDirectory)
        self.index = index
        logger.debug("dataset \(index.root): \(index.count) images, fingerprint \(index.fingerprint.prefix(16))")
        if let path = settings.dataOrderLogPath {
            do { dataOrderLog = try DataOrderLog(path: path) } catch { throw WorkerFailure.cannotWrite(path: path, reason: "\(error)") }
        }
        let collectives = try openRing()
        ring = collectives
        let sharedMemoryHost = SharedMemoryHost.current()
        let capabilities = (curve == nil ? [] : ["curve"]) + (sharedMemoryHost == nil ? [] : [SharedMemoryHost.capability])
        hello = Hello(workerID: workerID, host: ProcessInfo.processInfo.hostName, dataPlaneEndpoint: collectives.endpoint,
                      capabilities: capabilities, datasetFingerprint: index.fingerprint, curvePublicKey: curve?.keys.publicKey,
                      sharedMemoryHost: sharedMemoryHost ?? "", instance: instance)
        logger.info("worker \(workerID): coordinator \(settings.coordinator), data plane \(collectives.endpoint)\(sharedMemoryHost == nil ? "" : " or shared memory"), dataset of \(index.count) images")
    }

    /// Carries out the machine's directives; returns the exit code once it decided to exit.
    private func carryOut(_ directives: [WorkerProtocol.Directive]) -> Int32? {
        for directive in directives {
            switch directive {
            case let .sendHello(joins):
                guard var hello else { continue }
                hello.joins = joins
                hello.replica = state.claim
                control.send(.hello(hello))
            case let .welcomed(runID, heartbeat, deadline, ringKeys):
                control.welcomed(runID: runID, heartbeatInterval: .milliseconds(Int(heartbeat * 1000)), coordinatorDeadline: deadline)
                admitRingPeers(ringKeys)
            case .forgetCoordinator:
                control.resetForNewCoordinator()
            case let .runGeneration(assignment):
                if let code = runGeneration(assignment) { return code }
            case .interrupt:
                interrupted = true
            case let .upload(step):
                upload(requested: step)
            case let .send(message):
                control.send(message)
            case let .log(level, text):
                logger.log(level: level, "\(text)")
            case let .exit(code, reason):
                if let reason { logger.error("\(reason)") }
                pendingExit = (code, reason)
            }
        }
        if let exit = pendingExit, !runningGeneration { return exit.code }
        return nil
    }

    /// True while `runGeneration` runs (an exit waits for it to return).
    private var runningGeneration = false

    /// Runs a generation on this thread, then tells the machine how it ended.
    private func runGeneration(_ assignment: Assignment) -> Int32? {
        guard let index else { return 1 }
        interrupted = false
        runningGeneration = true
        let (end, epoch) = GenerationRun(assignment: assignment, runID: machine.runID, session: self, index: index).execute()
        runningGeneration = false
        if let epoch { lastEpoch = epoch }
        if case let .workerFailed(reason) = end { logger.error("\(reason)") }
        return carryOut(machine.generationEnded(end, now: now))
    }

    /// Serves an upload request: the replica's whole state, if it holds the run's state.
    private func upload(requested step: Int) {
        guard let replica = state.replica, state.claim != nil else {
            logger.warning("asked to upload the state of step \(step) with no replica of this run")
            return
        }
        if state.appliedStep != step {
            logger.warning("asked to upload the state of step \(step); this replica holds step \(state.appliedStep)")
        }
        StateTransfer.upload(replica, layout: replica.model.layout, step: state.appliedStep, epoch: lastEpoch, control: control)
        logger.info("uploaded the state of step \(state.appliedStep)")
    }

    // MARK: For GenerationRun

    /// The validator of `plan` for `config`, opened once (this worker's --val-data overrides the
    /// plan's path).
    func validator(for plan: ValidationPlan, config: ModelConfig) throws(Validator.Failure) -> Validator {
        if let validator, validator.plan == plan, validator.config == config { return validator }
        validator = nil
        let opened = try Validator.open(plan: plan, config: config, overridePath: settings.validationDataPath,
                                        cacheDirectory: settings.cacheDirectory)
        opened.pauseBeforeBlock = settings.validationPauseSeconds ?? 0
        logger.info("validation set \(opened.data.root): \(plan.images) images in blocks of \(plan.blockSize), every \(plan.every) steps")
        validator = opened
        return opened
    }

    var replicaState: ReplicaState { state }
    var log: DataOrderLog? { dataOrderLog }

    /// Between steps: what arrived from the coordinator goes through the machine. True in
    /// `interrupted` when the generation must end; `stopRequested` when a stop was asked for.
    func checkControl() -> (interrupted: Bool, stopRequested: Bool) {
        _ = carryOut(machine.tick(now: now, coordinatorSilence: control.coordinatorSilence))
        while !interrupted, let envelope = control.poll() {
            _ = carryOut(machine.received(envelope, now: now))
        }
        return (interrupted, machine.stopRequested)
    }

    /// The state the coordinator restored, for the state-source rank of a `.checkpoint` generation.
    func takeRestore(step: Int, generation: UInt64) -> RestoreStash.Restored? {
        // Chunks may still be queued behind the assignment's predecessors: take them first (up to
        // an interruption: what follows it is for the next generation).
        while !interrupted, let envelope = control.poll() { _ = carryOut(machine.received(envelope, now: now)) }
        return machine.takeRestore(step: step, generation: generation)
    }

    // MARK: The ring

    /// The TCP ring communicator of this process, on its own thread: its receiving socket binds
    /// port 0 of --host once, and that endpoint (announced in the hello) serves every TCP
    /// generation; each assignment gives it a new rank and next neighbour. Generations on
    /// shared memory make a ring of their own (`GenerationRing`).
    private func openRing() throws -> CollectiveThread {
        let (host, source) = try settings.resolveRingAddress().get()
        if let problem = settings.ringAddressProblem(host, how: "The ring address \(host) (\(source))") {
            throw WorkerFailure.ringAddress(problem)
        }
        logger.info("ring socket on \(host) (\(source))")
        let context = self.context, control = self.control, logger = self.logger
        let stalls = StallReporter(every: 10)
        if let curve {
            do {
                // Until the welcome lists the run's workers, only the coordinator's key is admitted.
                ringAuthenticator = try ZapAuthenticator(context: context, admitted: try AdmittedKeys([curve.coordinatorKey: "coordinator"]),
                                                         grace: .seconds(5), onRefusal: { logger.warning("ring: refused a connection: \($0)") })
            } catch {
                throw WorkerFailure.curve("cannot start the ring's authenticator: \(error)")
            }
        }
        let ringSettings = RingSettings(
            silenceDeadline: .milliseconds(250),
            // A silent neighbour is waited for while this worker's generation is current: slow
            // is not dead; the coordinator, which hears every worker's heartbeats, replaces the
            // generation when a worker is really gone.
            isPeerAlive: { _ in control.runningGenerationIsCurrent },
            onStall: { rank, waited in
                if stalls.due(waited) { logger.warning("ring: rank \(rank) silent for \(Int(waited.inSeconds)) s (alive per the coordinator); still waiting") }
            },
            curveKeys: curve?.keys, curveAuthenticator: ringAuthenticator,
            // Frames that are not the neighbour's current pieces (stale, of another run, or bytes
            // from an unknown peer) are dropped; said at most once every 10 s, never blamed on a rank.
            onDrops: { report in logger.warning("ring: dropped \(report)") },
            connectDeadline: .milliseconds(Int64(settings.ringConnectTimeoutSeconds * 1000)))
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

    /// Admits the run's workers (from the welcome) on the ring's socket: set before any
    /// assignment, so a neighbour is never refused for connecting early.
    private func admitRingPeers(_ keys: [String]) {
        guard let ringAuthenticator else { return }
        guard !keys.isEmpty else {
            logger.error("CURVE is on but the coordinator's welcome lists no worker keys; the ring admits nobody")
            return
        }
        do {
            ringAuthenticator.replaceAdmittedKeys(try AdmittedKeys(Dictionary(keys.map { ($0, "worker") }, uniquingKeysWith: { a, _ in a })))
        } catch {
            logger.error("the run's worker keys: \(error)")
        }
    }
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
