import Data
import Foundation
import Logging
import Wire

/// The coordinator's shell: one dedicated thread owns the ROUTER control socket, polls it with
/// short timeouts, feeds `Membership` and `RunProgress` and carries out what they decide.
/// It is never on the per-step data path: workers all-reduce among themselves.
final class CoordinatorServer {
    private enum Phase {
        case rendezvous
        case training
        /// Waiting for rank 0's parameters of `step`.
        case uploading(step: Int, epoch: Int, workerID: String, deadline: ContinuousClock.Instant)
        case done(step: Int, epoch: Int, path: String)
    }

    let settings: CoordinatorSettings
    var logger: Logger
    let index: DatasetIndex
    let totalSteps: Int
    let recipe: TrainingRecipe
    let runID: UInt64
    let stopSignal: StopSignal
    let context: ZmqContext
    let socket: ZmqSocket
    /// The endpoint actually bound (port 0 resolved).
    let endpoint: String
    var localWorkers: LocalWorkers?

    private var membership: Membership
    private var progress: RunProgress
    private var phase = Phase.rendezvous
    private var identities: [String: [UInt8]] = [:]
    private var workerOfIdentity: [[UInt8]: String] = [:]
    private var assembler = TensorAssembler()
    private var tensors: [TensorAssembler.Tensor] = []
    private var metrics: MetricsFile?
    private var stopSent = false
    private var trainingStart: ContinuousClock.Instant?
    private var lastSummary: RunProgress.StepSummary?
    private var badFrames = 0
    private let clockStart = ContinuousClock.now

    static let heartbeatMilliseconds: UInt32 = 500

    /// Binds the control socket (on the calling thread, which must be the thread that calls `run`).
    init(settings: CoordinatorSettings, index: DatasetIndex, totalSteps: Int, stopSignal: StopSignal, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        self.index = index
        self.totalSteps = totalSteps
        self.recipe = TrainingRecipe(settings: settings, totalSteps: totalSteps)
        self.runID = UInt64.random(in: 1...UInt64.max)
        self.stopSignal = stopSignal
        do {
            context = try ZmqContext()
            socket = try ZmqSocket(context, type: .router, linger: .seconds(2))
            try socket.setOption(ZMQ_ROUTER_MANDATORY_OPTION, 0, "ZMQ_ROUTER_MANDATORY")
            endpoint = try socket.bind(settings.bindEndpoint)
        } catch {
            throw CoordinatorFailure.transport("cannot bind \(settings.listen): \(error)")
        }
        membership = Membership(rules: .init(targetWorkers: settings.workers, minimumWorkers: settings.minWorkers,
                                             protocolVersion: FrameHeader.currentVersion,
                                             datasetFingerprint: index.fingerprint,
                                             livenessDeadline: settings.livenessDeadline))
        progress = RunProgress(worldSize: settings.workers, recipe: recipe)
        if let path = settings.metricsPath { metrics = try MetricsFile(path: path) }
    }

    private var now: Double { (ContinuousClock.now - clockStart).seconds }

    /// Runs the job; returns the final weights' path, the step and epoch reached.
    func run() throws -> (path: String, step: Int, epoch: Int) {
        do {
            return try serve()
        } catch {
            // Abort first: it also ends a worker blocked in a ring wait on a dead neighbour.
            broadcast(.abort(Abort(reason: "run failed: \(error)")))
            broadcastShutdown(exitCode: 1, reason: "run failed: \(error)")
            throw error
        }
    }

    private func serve() throws -> (path: String, step: Int, epoch: Int) {
        let rendezvousDeadline = ContinuousClock.now + .milliseconds(Int(settings.rendezvousTimeout * 1000))
        while true {
            if case let .done(step, epoch, path) = phase {
                broadcastShutdown(exitCode: 0, reason: "run complete at step \(step)")
                return (path, step, epoch)
            }
            try checkStopSignal()
            if let exited = localWorkers?.exited() {
                throw CoordinatorFailure.localWorkerExited(workerID: exited.id, status: exited.status)
            }
            if let received = try receive() { try handle(received) }
            try carryOut(membership.tick(now: now))
            if case .rendezvous = phase, ContinuousClock.now > rendezvousDeadline {
                let connected = membership.liveMembers.map(\.id)
                throw CoordinatorFailure.rendezvousTimedOut(seconds: settings.rendezvousTimeout, connected: connected,
                                                            missingRanks: Array(connected.count..<settings.workers),
                                                            expected: settings.workers)
            }
            if case let .uploading(step, _, id, deadline) = phase, ContinuousClock.now > deadline {
                throw CoordinatorFailure.upload("worker \(id) sent no complete parameters of step \(step) in time")
            }
        }
    }

    private func checkStopSignal() throws {
        let requests = stopSignal.requests
        guard requests > 0 else { return }
        switch phase {
        case .rendezvous:
            throw CoordinatorFailure.interruptedBeforeTraining
        case .done:
            break
        case _ where requests > 1:
            throw CoordinatorFailure.interruptedTwice
        case .training where !stopSent:
            stopSent = true
            logger.notice("stop requested: workers stop after the next step; the weights of that step are saved")
            for member in membership.ranked { send(.shutdown(Shutdown(exitCode: 0, reason: TrainingRecipe.stopRequestReason)), to: member.id) }
        default:
            break
        }
    }

    private func receive() throws -> ReceivedEnvelope? {
        do {
            return try socket.receiveEnvelope(deadline: .now + .milliseconds(100))
        } catch {
            if case .timedOut = error { return nil }
            throw CoordinatorFailure.transport("\(error)")
        }
    }

    // MARK: Messages

    private func handle(_ received: ReceivedEnvelope) throws {
        guard let identity = received.identity else { return }
        let envelope: Envelope
        switch received.envelope {
        case let .success(decoded):
            envelope = decoded
        case let .failure(.unsupportedVersion(found, supported)):
            // A worker of another protocol version: its frames do not decode here. Refuse it in
            // this version's frame, naming both versions; the run goes on.
            let detail = Self.versionRefusal(worker: found, coordinator: supported)
            logger.warning("refused a worker: \(detail)")
            sendRaw(.refuse(Refuse(reason: .protocolVersionMismatch, detail: detail)), to: identity)
            return
        case let .failure(error):
            badFrames += 1
            logger.warning("dropped a bad frame from \(workerOfIdentity[identity] ?? "an unknown peer") (\(badFrames) so far): \(error)")
            return
        }
        if case let .hello(hello) = envelope.message {
            identities[hello.workerID] = identity
            workerOfIdentity[identity] = hello.workerID
            try carryOut(membership.receive(hello: Membership.Hello(
                workerID: hello.workerID, protocolVersion: hello.protocolVersion, host: hello.host,
                dataPlaneEndpoint: hello.dataPlaneEndpoint, datasetFingerprint: hello.datasetFingerprint), now: now))
            return
        }
        guard envelope.runID == runID else {
            logger.debug("dropped a \(envelope.message.kind) of run \(envelope.runID)")
            return
        }
        guard let workerID = workerOfIdentity[identity], let member = membership.members[workerID] else {
            logger.warning("dropped a \(envelope.message.kind) from a worker that never said hello")
            return
        }
        membership.heard(from: workerID, now: now)
        guard envelope.generation == membership.generation || envelope.message.kind == .heartbeat else {
            logger.debug("dropped a \(envelope.message.kind) of generation \(envelope.generation) from \(workerID)")
            return
        }
        let rank = member.rank
        switch envelope.message {
        case .heartbeat:
            break
        case let .stepReport(report):
            guard let rank else { return }
            membership.applied(step: Int(report.step), by: workerID, generation: envelope.generation, now: now)
            try react(to: progress.report(rank: rank, report))
        case let .workerStatus(status):
            guard let rank else { return }
            try react(to: progress.status(rank: rank, lastAppliedStep: Int(status.lastAppliedStep),
                                          epoch: Int(status.cursor.epoch), checksum: status.parameterChecksum))
        case let .tensorChunk(chunk):
            try receiveChunk(chunk, from: workerID)
        case let .checkpoint(command) where command.action == .uploadComplete:
            try finishUpload(from: workerID)
        case let .abort(abort):
            throw CoordinatorFailure.workerAborted(workerID: workerID, rank: rank, reason: abort.reason)
        default:
            logger.debug("ignored \(envelope.message.kind) from \(workerID)")
        }
    }

    static func versionRefusal(worker: UInt16, coordinator: UInt16) -> String {
        "protocol version mismatch: the worker speaks protocol version \(worker), this coordinator speaks version \(coordinator)"
    }

    // MARK: Membership directives

    private func carryOut(_ directives: [Membership.Directive]) throws {
        for directive in directives {
            switch directive {
            case let .welcome(workerID):
                logger.info("admitted worker \(workerID) (\(membership.liveMembers.count)/\(settings.workers))")
                send(.welcome(Welcome(workerID: workerID, heartbeatIntervalMilliseconds: Self.heartbeatMilliseconds,
                                      livenessDeadlineMilliseconds: UInt32(settings.livenessDeadline * 1000))), to: workerID)
            case let .refuse(workerID, refusal):
                let (reason, detail) = Self.describe(refusal)
                logger.warning("refused worker \(workerID): \(detail)")
                send(.refuse(Refuse(reason: reason, detail: detail)), to: workerID)
            case let .startGeneration(generation, placements, _, source):
                guard case .rendezvous = phase else {
                    throw CoordinatorFailure.plan("membership changed during training (generation \(generation)); elastic recovery is not built yet")
                }
                startTraining(generation: generation, placements: placements, stateSource: source)
            case let .declaredDown(workerIDs, _):
                if case .rendezvous = phase {
                    logger.warning("worker \(workerIDs.joined(separator: ", ")) left before training started")
                    continue
                }
                if case .done = phase { continue }
                let ranks = workerIDs.compactMap { id in progressRank(of: id) }
                throw CoordinatorFailure.workerDown(workerIDs: workerIDs, ranks: ranks, deadlineSeconds: settings.livenessDeadline,
                                                    step: progress.lastCompletedStep)
            case let .pause(live, minimum):
                logger.warning("only \(live) of the minimum \(minimum) workers are live")
            }
        }
    }

    private var placementsByWorker: [String: Int] = [:]

    private func progressRank(of workerID: String) -> Int? { placementsByWorker[workerID] }

    private func startTraining(generation: UInt64, placements: [Membership.Placement], stateSource: Int) {
        phase = .training
        trainingStart = ContinuousClock.now
        logger[metadataKey: "generation"] = "\(generation)"
        placementsByWorker = Dictionary(uniqueKeysWithValues: placements.map { ($0.workerID, $0.rank) })
        let world = placements.count
        logger.info("generation \(generation): \(world) ranks \(placements.map { "\($0.rank)=\($0.workerID)" }.joined(separator: " ")); training \(settings.config) for \(totalSteps) steps, global batch \(settings.globalBatch)")
        func peer(_ id: String) -> RingPeer {
            RingPeer(rank: UInt32(placementsByWorker[id] ?? 0), endpoint: membership.members[id]?.dataPlaneEndpoint ?? "")
        }
        for placement in placements {
            let assignment = Assignment(
                rank: UInt32(placement.rank), worldSize: UInt32(world), generation: generation,
                previous: peer(placement.previousWorkerID), next: peer(placement.nextWorkerID),
                configurationName: settings.config, settingsJSON: recipe.json, cursor: ShardCursor(epoch: 0, step: 0),
                globalBatch: UInt32(settings.globalBatch), seed: settings.seed, stateSourceRank: UInt32(stateSource))
            send(.assignment(assignment), to: placement.workerID, generation: generation)
        }
    }

    static func describe(_ refusal: Membership.Refusal) -> (Refuse.Reason, String) {
        switch refusal {
        case let .protocolVersionMismatch(worker, coordinator):
            (.protocolVersionMismatch, versionRefusal(worker: worker, coordinator: coordinator))
        case let .datasetMismatch(worker, coordinator):
            (.datasetMismatch, "dataset mismatch: the worker's index has fingerprint \(worker.prefix(16)), the coordinator's \(coordinator.prefix(16)); both must see the same files")
        case .duplicateWorkerID:
            (.duplicateWorkerID, "another live worker already uses this worker id")
        case let .runFull(workers):
            (.runFull, "the run already has its \(workers) workers")
        }
    }

    // MARK: Progress

    private func react(to events: [RunProgress.Event]) throws {
        for event in events {
            switch event {
            case let .replicasAgree(step, checksum):
                logger.info("replicas agree at step \(step) (parameter CRC32C 0x\(String(checksum, radix: 16)))")
            case let .stepCompleted(summary):
                try record(summary)
            case let .checksumMismatch(step, checksums):
                throw CoordinatorFailure.replicasDiverged(RunProgress.Event.describeMismatch(step: step, checksums: checksums))
            case let .finalStepsDiffer(steps):
                throw CoordinatorFailure.replicasDiverged("ranks stopped after different steps: \(steps.sorted { $0.key < $1.key }.map { "rank \($0.key) step \($0.value)" }.joined(separator: ", "))")
            case let .finished(step, epoch, checksum):
                logger.info("all ranks stopped after step \(step) with parameter CRC32C 0x\(String(checksum, radix: 16)); fetching the weights from rank 0")
                guard let source = placementsByWorker.first(where: { $0.value == 0 })?.key else {
                    throw CoordinatorFailure.upload("no rank 0")
                }
                phase = .uploading(step: step, epoch: epoch, workerID: source, deadline: .now + .seconds(120))
                send(.checkpoint(CheckpointCommand(action: .upload, step: UInt64(step), epoch: UInt64(epoch))), to: source)
            }
        }
    }

    private func record(_ summary: RunProgress.StepSummary) throws {
        lastSummary = summary
        let elapsed = trainingStart.map { (ContinuousClock.now - $0).seconds } ?? 0
        let eta = summary.step > 0 ? elapsed / Double(summary.step) * Double(totalSteps - summary.step) : nil
        if summary.step % settings.logEvery == 0 || summary.step == totalSteps {
            logger.info("\(ProgressFormat.line(summary, totalSteps: totalSteps, etaSeconds: eta))")
        }
        if let metrics {
            do { try metrics.append(ProgressFormat.metricsJSON(summary, elapsedSeconds: elapsed)) } catch {
                throw CoordinatorFailure.cannotWrite(path: metrics.path, reason: "\(error)")
            }
        }
    }

    // MARK: Final upload

    private func receiveChunk(_ chunk: TensorChunk, from workerID: String) throws {
        guard case let .uploading(_, _, source, _) = phase, source == workerID else {
            logger.warning("dropped a tensor chunk (\(chunk.name)) from \(workerID): no upload asked of it")
            return
        }
        do {
            if let tensor = try assembler.add(chunk) { tensors.append(tensor) }
        } catch {
            throw CoordinatorFailure.upload("from \(workerID): \(error)")
        }
    }

    private func finishUpload(from workerID: String) throws {
        guard case let .uploading(step, epoch, source, _) = phase, source == workerID else { return }
        guard assembler.isComplete else {
            throw CoordinatorFailure.upload("\(workerID) said the upload was complete with \(tensors.count) tensors assembled")
        }
        let path = try FinalWeights.write(tensors, step: step, epoch: epoch, config: settings.config, into: settings.outputDirectory)
        logger.info("wrote \(path) (\(tensors.count) tensors, step \(step), epoch \(epoch))")
        phase = .done(step: step, epoch: epoch, path: path)
    }

    /// The last completed step's summary, for the end-of-run summary.
    var finalSummary: RunProgress.StepSummary? { lastSummary }

    // MARK: Sending

    private func send(_ message: Message, to workerID: String, generation: UInt64? = nil) {
        guard let identity = identities[workerID] else { return }
        do {
            try socket.send(Envelope(generation: generation ?? membership.generation, runID: runID, message: message),
                            to: identity, deadline: .now + .seconds(2))
        } catch {
            logger.warning("could not send \(message.kind) to \(workerID): \(error)")
        }
    }

    private func sendRaw(_ message: Message, to identity: [UInt8]) {
        try? socket.send(Envelope(generation: 0, runID: runID, message: message), to: identity, deadline: .now + .seconds(2))
    }

    /// Tells every worker that said hello to exit with `exitCode`.
    func broadcastShutdown(exitCode: Int32, reason: String) {
        broadcast(.shutdown(Shutdown(exitCode: exitCode, reason: reason)))
    }

    /// Sends `message` to every live worker that said hello.
    private func broadcast(_ message: Message) {
        for workerID in identities.keys.sorted() where (membership.members[workerID]?.status ?? .down) <= .up {
            send(message, to: workerID)
        }
    }
}

/// ZMQ_ROUTER_MANDATORY (33): off, so a message to a vanished worker is dropped rather than an error.
let ZMQ_ROUTER_MANDATORY_OPTION: Int32 = 33

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
