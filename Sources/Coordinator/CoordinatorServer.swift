import Data
import Foundation
import Logging
import Wire

/// The coordinator's shell: one dedicated thread owns the ROUTER control socket, polls it with
/// short timeouts, feeds `Membership` and `RunProgress` and carries out what they decide.
/// It is never on the per-step data path: workers all-reduce among themselves.
///
/// Failures: a worker silent past the liveness deadline is declared down and the survivors
/// continue in a new generation from the most advanced replica (or pause below
/// --min-workers); a worker that joins later enters at the next generation. Rank 0 streams its
/// state at checkpoint steps; the checkpoint is written on a thread of its own once its
/// parameter checksum matches the one every rank reported for that step.
final class CoordinatorServer {
    enum Phase {
        case rendezvous
        case training
        /// Below --min-workers: waiting for workers to join.
        case paused
        /// Every rank finished at `step`; waiting for `workerID`'s final state.
        case finishing(step: Int, epoch: Int, checksum: UInt32, workerID: String, deadline: ContinuousClock.Instant)
        case done(step: Int, epoch: Int, path: String)
    }

    let settings: CoordinatorSettings
    var logger: Logger
    let index: TrainingData
    let sampler: Sampler
    let totalSteps: Int
    let recipe: TrainingRecipe
    let runID: UInt64
    let stopSignal: StopSignal
    let context: ZmqContext
    let socket: ZmqSocket
    /// The endpoint actually bound (port 0 resolved).
    let endpoint: String
    var localWorkers: LocalWorkers?
    /// The checkpoint this run resumed from, until the first generation has taken its state.
    var resumeFrom: Checkpoint?
    let writer: CheckpointWriter
    /// With --curve-keys: the ZAP handler admitting the listed workers' keys.
    private var authenticator: ZapAuthenticator?
    /// The admitted workers' public keys, sent in every welcome (the ring admits only these).
    private var admittedWorkerKeys: [String] = []
    /// The CURVE public key each worker announced in its hello (given to its ring neighbours).
    var curvePublicKeys: [String: String] = [:]
    /// The shared-memory identity each worker announced (absent: it cannot use shared memory,
    /// or its shared-memory ring failed once and it gets TCP rings from then on).
    var sharedMemoryHosts: [String: String] = [:]
    /// What carries the current generation's ring.
    var ringTransport = RingTransportKind.tcp

    var membership: Membership
    var progress: RunProgress
    var phase = Phase.rendezvous
    var identities: [String: [UInt8]] = [:]
    var workerOfIdentity: [[UInt8]: String] = [:]
    var placementsByWorker: [String: Int] = [:]
    var metrics: MetricsFile?
    /// Failures, recoveries and checkpoints, one JSON object per line (`DIR/events.jsonl`).
    var events: MetricsFile?
    var stopSent = false
    var trainingStart: ContinuousClock.Instant?
    var lastSummary: RunProgress.StepSummary?
    var badFrames = 0
    let clockStart = ContinuousClock.now
    /// True once a generation of this coordinator brought every rank to the same state: later
    /// generations start from the replicas, not from the seed or the checkpoint.
    var replicasSynchronised = false
    /// Workers that hold a replica synchronised by this coordinator (ranks of a generation whose
    /// start every rank confirmed). A generation needs one of them to start from the replicas.
    var replicaHolders: Set<String> = []
    /// Rank 0's state streaming in, and a complete one waiting for its step's agreed checksum.
    var upload: StateUpload?
    var parkedUpload: StateUpload.Uploaded?
    /// Checksums every rank agreed on, by step (the recent ones).
    var agreedChecksums: [Int: UInt32] = [:]
    /// Failures since the last completed step that broke a generation (bounded).
    var brokenGenerations = 0
    /// A failure being recovered from: when the worker(s) were declared down and last heard.
    var recovery: (ids: [String], declaredAt: Double, lastHeard: Double)?
    var firstReportAt: [Int: Double] = [:]
    var stallReportedAt: Double = 0
    var lastBeatSent: Double = 0
    var notMemberRepliedAt: [String: Double] = [:]
    var lastCheckpointStep = -1

    static let heartbeatMilliseconds: UInt32 = 500
    static let maximumBrokenGenerations = 5

    /// Binds the control socket (on the calling thread, which must be the thread that calls `run`).
    init(settings: CoordinatorSettings, index: TrainingData, sampler: Sampler, totalSteps: Int, resumeFrom: Checkpoint?,
         store: CheckpointStore, stopSignal: StopSignal, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        self.index = index
        self.sampler = sampler
        self.totalSteps = totalSteps
        self.recipe = TrainingRecipe(settings: settings, totalSteps: totalSteps)
        self.runID = UInt64.random(in: 1...UInt64.max)
        self.stopSignal = stopSignal
        self.resumeFrom = resumeFrom
        do {
            context = try ZmqContext()
            socket = try ZmqSocket(context, type: .router, linger: .seconds(2))
            try socket.setOption(ZMQ_ROUTER_MANDATORY_OPTION, 0, "ZMQ_ROUTER_MANDATORY")
            // State transfers are hundreds of chunks: a full queue must not drop any.
            try socket.setHighWaterMarks(send: 0, receive: 0)
        } catch {
            throw CoordinatorFailure.transport("cannot create the control socket: \(error)")
        }
        if let folder = settings.curveKeys {
            let logger = self.logger
            do {
                let own = try CurveKeyFolder.ownKeyPair(in: folder, name: "coordinator")
                let admitted = try AdmittedKeys.load(folder: folder, excluding: own.publicKey)
                let authenticator = try ZapAuthenticator(context: context, admitted: admitted, onRefusal: { refusal in
                    logger.warning("refused a connection: \(refusal)")
                })
                self.authenticator = authenticator
                admittedWorkerKeys = admitted.names.keys.sorted()
                try socket.enableCurveServer(own, authenticatedBy: authenticator)
                logger.info("CURVE on: \(admitted.count) admitted worker key(s) from \(folder)")
            } catch {
                throw CoordinatorFailure.transport("--curve-keys \(folder): \(error)")
            }
        } else if !isLoopbackEndpoint(settings.listen) {
            logger.warning("--insecure: \(settings.listen) takes plain-text connections from anyone who can reach it")
        }
        do {
            endpoint = try socket.bind(settings.bindEndpoint)
        } catch {
            throw CoordinatorFailure.transport("cannot bind \(settings.listen): \(error)")
        }
        membership = Membership(rules: .init(targetWorkers: settings.workers, minimumWorkers: settings.minWorkers,
                                             protocolVersion: FrameHeader.currentVersion,
                                             datasetFingerprint: index.fingerprint,
                                             livenessDeadline: settings.livenessDeadline))
        let resumedStep = resumeFrom?.state.step ?? 0
        progress = RunProgress(worldSize: settings.workers, recipe: recipe, completedStep: resumedStep)
        lastCheckpointStep = resumeFrom?.state.step ?? -1
        writer = CheckpointWriter(store: store)
        if let path = settings.metricsPath { metrics = try MetricsFile(path: path, appending: resumeFrom != nil) }
        events = try? MetricsFile(path: (settings.outputDirectory as NSString).appendingPathComponent("events.jsonl"), appending: true)
    }

    /// Appends an event line (with the wall time); an unwritable events file is not worth stopping for.
    func recordEvent(_ name: String, _ fields: [(String, String)]) {
        let time = String(format: "%.3f", Date().timeIntervalSince1970)
        let body = ([("event", "\"\(name)\""), ("time", time)] + fields).map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
        do { try events?.append("{" + body + "}") } catch { logger.warning("cannot append to \(events?.path ?? "events"): \(error)") }
    }

    deinit {
        writer.stop()
        socket.close()
        authenticator?.stop()
    }

    var now: Double { (ContinuousClock.now - clockStart).inSeconds }

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
            try checkLocalWorkers()
            if let received = try receive() { try handle(received) }
            try carryOut(membership.tick(now: now))
            sendHeartbeats()
            try collectCheckpointResults()
            reportStalls()
            if case .rendezvous = phase, ContinuousClock.now > rendezvousDeadline {
                let connected = membership.liveMembers.map(\.id)
                throw CoordinatorFailure.rendezvousTimedOut(seconds: settings.rendezvousTimeout, connected: connected,
                                                            missingRanks: Array(connected.count..<settings.workers),
                                                            expected: settings.workers)
            }
            if case let .finishing(step, _, _, id, deadline) = phase, ContinuousClock.now > deadline {
                throw CoordinatorFailure.upload("worker \(id) sent no complete state of step \(step) in time")
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
        case .training where !stopSent, .paused where !stopSent:
            stopSent = true
            logger.notice("stop requested: workers stop after the next step; the state of that step is saved")
            sendStopRequests()
        default:
            break
        }
    }

    func sendStopRequests() {
        for member in membership.ranked { send(.shutdown(Shutdown(exitCode: 0, reason: TrainingRecipe.stopRequestReason)), to: member.id) }
    }

    /// A --local worker that exited is lost at once (no need to wait for the deadline) and replaced.
    private func checkLocalWorkers() throws {
        guard let localWorkers, let exited = localWorkers.exited() else { return }
        if case .done = phase { return }
        logger.warning("local worker \(exited.id) exited with status \(exited.status)")
        guard localWorkers.respawns < localWorkers.maximumRespawns else {
            throw CoordinatorFailure.localWorkerExited(workerID: exited.id, status: exited.status)
        }
        try carryOut(membership.lost(exited.id, now: now))
        try localWorkers.respawn(id: exited.id)
    }

    private func receive() throws -> ReceivedEnvelope? {
        do {
            return try socket.receiveEnvelope(deadline: .now + .milliseconds(50))
        } catch {
            if case .timedOut = error { return nil }
            throw CoordinatorFailure.transport("\(error)")
        }
    }

    private func sendHeartbeats() {
        guard now - lastBeatSent >= Double(Self.heartbeatMilliseconds) / 1000 else { return }
        lastBeatSent = now
        broadcast(.heartbeat(Heartbeat(sequence: UInt64(now * 1000), lastAppliedStep: UInt64(progress.lastCompletedStep))))
    }

    /// Names ranks that have not reported a step long after another rank did (alive, per their
    /// heartbeats, but not progressing).
    private func reportStalls() {
        guard case .training = phase, let (step, missing) = progress.oldestIncompleteStep, !missing.isEmpty,
              let first = firstReportAt[step], now - first > settings.stallSeconds,
              now - stallReportedAt > settings.stallSeconds else { return }
        stallReportedAt = now
        let names = missing.map { rank in "rank \(rank) (\(placementsByWorker.first { $0.value == rank }?.key ?? "?"))" }
        logger.warning("stalled: \(names.joined(separator: ", ")) not done with step \(step) \(Int(now - first)) s after the first rank reported it; still alive per heartbeats")
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
            try receive(hello, from: identity)
            return
        }
        guard envelope.runID == runID else {
            logger.debug("dropped a \(envelope.message.kind) of run \(envelope.runID)")
            return
        }
        guard let workerID = workerOfIdentity[identity], let member = membership.members[workerID] else {
            logger.debug("dropped a \(envelope.message.kind) from a peer that never said hello")
            return
        }
        guard member.status <= .up else {
            // Declared down but alive: it must say hello again to rejoin.
            if now - (notMemberRepliedAt[workerID] ?? -10) > 1 {
                notMemberRepliedAt[workerID] = now
                send(.refuse(Refuse(reason: .notMember, detail: "declared down after \(settings.livenessDeadline) s of silence; say hello again")),
                     to: workerID)
            }
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
            let step = Int(report.step)
            membership.applied(step: step, by: workerID, generation: envelope.generation, now: now)
            if firstReportAt[step] == nil { firstReportAt[step] = now }
            try react(to: progress.report(rank: rank, report))
        case let .workerStatus(status):
            guard let rank else { return }
            try react(to: progress.status(rank: rank, lastAppliedStep: Int(status.lastAppliedStep),
                                          epoch: Int(status.cursor.epoch), checksum: status.parameterChecksum))
        case let .tensorChunk(chunk):
            receiveChunk(chunk, from: workerID)
        case let .checkpoint(command) where command.action == .uploadComplete:
            try finishUpload(command, from: workerID)
        case let .abort(abort) where abort.failedRank != nil:
            if abort.ringTransportUnavailable, sharedMemoryHosts.removeValue(forKey: workerID) != nil {
                logger.warning("worker \(workerID) cannot set up a shared-memory ring; it gets TCP rings from now on")
            }
            try generationBroke(reportedBy: workerID, reason: abort.reason)
        case let .abort(abort):
            throw CoordinatorFailure.workerAborted(workerID: workerID, rank: rank, reason: abort.reason)
        default:
            logger.debug("ignored \(envelope.message.kind) from \(workerID)")
        }
    }

    private func receive(_ hello: Hello, from identity: [UInt8]) throws {
        if let member = membership.members[hello.workerID], member.status <= .up {
            if identities[hello.workerID] == identity {
                // A repeated hello on the same connection (sent while no coordinator answered).
                sendWelcome(to: hello.workerID)
                return
            }
            // The same id on a new connection: a restarted process; the old one is gone.
            logger.warning("worker \(hello.workerID) says hello on a new connection: treating the old one as lost")
            try carryOut(membership.lost(hello.workerID, now: now))
        }
        if let old = identities[hello.workerID] { workerOfIdentity[old] = nil }
        curvePublicKeys[hello.workerID] = hello.curvePublicKey
        sharedMemoryHosts[hello.workerID] = hello.sharedMemoryIdentity
        identities[hello.workerID] = identity
        workerOfIdentity[identity] = hello.workerID
        notMemberRepliedAt[hello.workerID] = nil
        try carryOut(membership.receive(hello: Membership.Hello(
            workerID: hello.workerID, protocolVersion: hello.protocolVersion, host: hello.host,
            dataPlaneEndpoint: hello.dataPlaneEndpoint, datasetFingerprint: hello.datasetFingerprint), now: now))
    }

    static func versionRefusal(worker: UInt16, coordinator: UInt16) -> String {
        "protocol version mismatch: the worker speaks protocol version \(worker), this coordinator speaks version \(coordinator)"
    }

    /// A worker reported that its ring broke while everyone was alive: a fresh generation of
    /// the same members, a bounded number of times in a row.
    private func generationBroke(reportedBy workerID: String, reason: String) throws {
        brokenGenerations += 1
        guard brokenGenerations <= Self.maximumBrokenGenerations else {
            throw CoordinatorFailure.workerAborted(workerID: workerID, rank: placementsByWorker[workerID],
                                                   reason: "\(reason) (\(brokenGenerations) broken generations without progress)")
        }
        logger.warning("generation \(membership.generation) broke (\(workerID): \(reason)); forming a new one")
        try carryOut(membership.reform())
    }

    // MARK: Membership directives

    private func carryOut(_ directives: [Membership.Directive]) throws {
        for directive in directives {
            switch directive {
            case let .welcome(workerID):
                logger.info("admitted worker \(workerID) (\(membership.liveMembers.count)/\(settings.workers))")
                sendWelcome(to: workerID)
            case let .refuse(workerID, refusal):
                let (reason, detail) = Self.describe(refusal)
                logger.warning("refused worker \(workerID): \(detail)")
                send(.refuse(Refuse(reason: reason, detail: detail)), to: workerID)
            case let .startGeneration(generation, placements, _, source):
                try startGeneration(generation, placements: placements, guessedSource: source)
            case let .declaredDown(workerIDs, _):
                declaredDown(workerIDs)
            case let .pause(live, minimum):
                if case .rendezvous = phase { continue }
                phase = .paused
                logger.warning("paused: only \(live) of the minimum \(minimum) workers are live; waiting for workers to join")
            }
        }
    }

    private func sendWelcome(to workerID: String) {
        send(.welcome(Welcome(workerID: workerID, heartbeatIntervalMilliseconds: Self.heartbeatMilliseconds,
                              livenessDeadlineMilliseconds: UInt32(settings.livenessDeadline * 1000),
                              admittedCurveKeys: admittedWorkerKeys)), to: workerID)
    }

    private func declaredDown(_ workerIDs: [String]) {
        let lastHeard = workerIDs.compactMap { membership.members[$0]?.lastHeard }.max() ?? now
        let ranks = workerIDs.map { id in placementsByWorker[id].map { "rank \($0)" } ?? "not ranked" }
        switch phase {
        case .rendezvous:
            logger.warning("worker \(workerIDs.joined(separator: ", ")) left before training started")
        case .done:
            break
        default:
            logger.warning("worker \(workerIDs.joined(separator: ", ")) (\(ranks.joined(separator: ", "))) declared down: silent for \(ProgressFormat.fixed(now - lastHeard, 1)) s at step \(progress.lastCompletedStep)")
            recovery = (workerIDs, now, lastHeard)
            recordEvent("worker_down", [("workers", "[" + workerIDs.map { "\"\($0)\"" }.joined(separator: ", ") + "]"),
                                        ("step", "\(progress.lastCompletedStep)"),
                                        ("seconds_since_last_message", ProgressFormat.number(now - lastHeard))])
        }
        for id in workerIDs {
            placementsByWorker[id] = nil
            replicaHolders.remove(id)
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
                agreed(step: step, checksum: checksum)
            case let .stepCompleted(summary):
                try record(summary)
            case let .checksumMismatch(step, checksums):
                throw CoordinatorFailure.replicasDiverged(RunProgress.Event.describeMismatch(step: step, checksums: checksums))
            case let .finalStepsDiffer(steps):
                throw CoordinatorFailure.replicasDiverged("ranks stopped after different steps: \(steps.sorted { $0.key < $1.key }.map { "rank \($0.key) step \($0.value)" }.joined(separator: ", "))")
            case let .finished(step, epoch, checksum):
                agreed(step: step, checksum: checksum)
                guard let source = placementsByWorker.first(where: { $0.value == 0 })?.key else {
                    throw CoordinatorFailure.upload("no rank 0")
                }
                logger.info("all ranks stopped after step \(step) with parameter CRC32C 0x\(String(checksum, radix: 16)); fetching the state from rank 0")
                phase = .finishing(step: step, epoch: epoch, checksum: checksum, workerID: source, deadline: .now + .seconds(300))
                upload = nil
                send(.checkpoint(CheckpointCommand(action: .upload, step: UInt64(step), epoch: UInt64(epoch))), to: source)
            }
        }
    }

    private func agreed(step: Int, checksum: UInt32) {
        if !replicasSynchronised {
            replicasSynchronised = true
            resumeFrom = nil
        }
        replicaHolders.formUnion(placementsByWorker.keys)
        if step == 0 || step % recipe.checksumEvery != 0 || step == progress.lastCompletedStep {
            logger.debug("replicas agree at step \(step) (parameter CRC32C 0x\(String(checksum, radix: 16)))")
        }
        agreedChecksums[step] = checksum
        agreedChecksums = agreedChecksums.filter { $0.key >= step - 4 * max(settings.checkpointEvery, recipe.checksumEvery) }
        if let parked = parkedUpload, parked.step == step {
            parkedUpload = nil
            checkpoint(parked)
        }
    }

    private func record(_ summary: RunProgress.StepSummary) throws {
        lastSummary = summary
        brokenGenerations = 0
        firstReportAt = firstReportAt.filter { $0.key > summary.step }
        if let recovery {
            let seconds = now - recovery.declaredAt, sinceSilence = now - recovery.lastHeard
            logger.notice("recovered: step \(summary.step) completed \(ProgressFormat.fixed(seconds, 2)) s after \(recovery.ids.joined(separator: ", ")) was declared down (\(ProgressFormat.fixed(sinceSilence, 2)) s after its last message), with \(progress.worldSize) workers")
            recordEvent("recovery", [("step", "\(summary.step)"), ("workers", "\(progress.worldSize)"),
                                     ("seconds_since_declared_down", ProgressFormat.number(seconds)),
                                     ("seconds_since_last_message", ProgressFormat.number(sinceSilence))])
            self.recovery = nil
        }
        let elapsed = trainingStart.map { (ContinuousClock.now - $0).inSeconds } ?? 0
        let done = summary.step - (resumeFrom?.state.step ?? 0)
        let eta = done > 0 ? elapsed / Double(done) * Double(totalSteps - summary.step) : nil
        if summary.step % settings.logEvery == 0 || summary.step == totalSteps {
            logger.info("\(ProgressFormat.line(summary, totalSteps: totalSteps, etaSeconds: eta, ringTransport: ringTransport.shortName))")
        }
        if let metrics {
            do { try metrics.append(ProgressFormat.metricsJSON(summary, elapsedSeconds: elapsed, ringTransport: ringTransport.shortName)) } catch {
                throw CoordinatorFailure.cannotWrite(path: metrics.path, reason: "\(error)")
            }
        }
    }

    /// The last completed step's summary, for the end-of-run summary.
    var finalSummary: RunProgress.StepSummary? { lastSummary }

    // MARK: Sending

    func send(_ message: Message, to workerID: String, generation: UInt64? = nil) {
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
    func broadcast(_ message: Message) {
        for workerID in identities.keys.sorted() where (membership.members[workerID]?.status ?? .down) <= .up {
            send(message, to: workerID)
        }
    }
}

/// ZMQ_ROUTER_MANDATORY (33): off, so a message to a vanished worker is dropped rather than an error.
let ZMQ_ROUTER_MANDATORY_OPTION: Int32 = 33

