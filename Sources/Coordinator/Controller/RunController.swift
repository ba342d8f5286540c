import TensorFiles
import Dataset
import Checkpoints
import Launch
import Logging
import Wire

/// Every decision the coordinator makes, as a value with no I/O: the shell (`CoordinatorServer`)
/// feeds it events (frames, a worker's exit, signals, the writer's results, the time) and carries
/// out the directives it returns (send, log, record, write, load, respawn, end). Membership
/// (`Membership`) and step accounting (`RunProgress`) are values it holds.
///
/// Phases (docs/architecture.md draws the table):
/// - `rendezvous`: waiting for --workers workers; a timeout ends the run with the missing ranks;
/// - `starting`: a generation is formed but its assignments wait (for a checkpoint being loaded
///   off the loop, or a back-off after generations broke in a row);
/// - `training`: a generation runs; reports complete steps; rank 0 uploads checkpoints;
/// - `paused`: fewer live workers than --min-workers;
/// - `finishing`: every rank stopped; waiting for rank 0's final state;
/// - `finalizing`: the writer thread writes the final checkpoint and weights (retried on failure);
/// - `ended`: an `.end` directive was given.
///
/// Recoverable conditions never end the run: a lost worker, a broken ring, a state transfer that
/// did not arrive, a stale or foreign frame, a duplicate id, a restarted coordinator. What ends it
/// with an error: replicas that diverged, a run-level failure a worker reports (non-finite losses
/// step after step, unreadable data), --ring-transport shm across hosts, the rendezvous timeout,
/// a second interrupt, `--local` workers that keep dying.
struct RunController {
    /// What is fixed for the whole run.
    struct Plan: Sendable {
        var settings: CoordinatorSettings
        var recipe: TrainingRecipe
        var totalSteps: Int
        /// This coordinator incarnation's id, in every frame.
        var runID: UInt64
        var sampler: Sampler
        var datasetFingerprint: String
        var admittedWorkerKeys: [String]
        /// The best validation of an earlier incarnation of this run (`DIR/best/summary.json`).
        var previousBest: BestValidation? = nil

        var lineage: RunLineage {
            RunLineage(config: settings.config, datasetFingerprint: datasetFingerprint, globalBatch: settings.globalBatch,
                       seed: settings.seed, optimizer: settings.optimizer)
        }
    }

    enum Phase: Equatable {
        case rendezvous(deadline: Double)
        case starting(PendingGeneration)
        case training
        case paused
        case finishing(Finishing)
        case finalizing(Finalizing)
        case ended
    }

    /// A formed generation whose assignments are not sent yet.
    struct PendingGeneration: Equatable {
        var generation: UInt64
        var placements: [Membership.Placement]
        /// Not before this time (a back-off after broken generations).
        var notBefore: Double
    }

    /// Every rank stopped after `step`; rank 0 (`workerID`) was asked for its state at `requestedAt`.
    struct Finishing: Equatable {
        var step: Int
        var epoch: Int
        var checksum: UInt32
        var workerID: String
        var requestedAt: Double
    }

    /// The final state is being written; after a failure it is written again at `retryAt`.
    struct Finalizing: Equatable {
        var step: Int
        var epoch: Int
        var model: [NamedTensor]
        var checkpoint: Checkpoint?
        var retryAt: Double?
        var failures: Int
    }

    /// The generation that runs (or ran last).
    struct GenerationRecord: Equatable {
        var number: UInt64
        var ranks: [String: Int]
        var origin: StateOrigin
        var startStep: Int
        /// When its assignments went out.
        var startedAt: Double
        /// Every rank confirmed the start with the same parameter checksum.
        var confirmed = false
    }

    /// What the coordinator knows of checkpoints.
    struct Checkpoints: Equatable {
        /// In memory: the one resumed from, or one loaded for a generation; dropped once a
        /// generation's replicas hold it.
        var loaded: Checkpoint?
        /// The step of the newest checkpoint on disk, as far as this coordinator knows.
        var newestStep: Int?
        /// A `.loadNewestCheckpoint` is under way.
        var loading = false
    }

    static let heartbeatInterval = 0.5
    /// Generations that may break in a row (no step completing) before the next waits.
    static let brokenGenerationsBeforeBackOff = 5
    static let longestBackOff = 60.0
    /// Seconds rank 0 has to deliver the final state before it is asked again.
    static let finalUploadWait = 300.0
    static let finalWriteRetry = 30.0
    /// A loop turn this late means the coordinator itself did not run (stopped, starved).
    static let ownSilenceThreshold = 1.0
    /// `--local` replacements allowed within `respawnWindow` seconds before a crash loop is assumed.
    static let respawnWindow = 600.0

    let plan: Plan
    var membership: Membership
    var progress: RunProgress
    var phase: Phase
    var checkpoints: Checkpoints
    var current: GenerationRecord?
    var lastSummary: RunProgress.StepSummary?
    var ringTransport = RingTransportKind.tcp
    /// Frames dropped since the start, by kind of trouble (undecodable, stale, foreign, unknown peer).
    var dropped: [String: Int] = [:]

    var peers = PeerBook()
    var upload: StateUpload?
    var parkedUpload: StateUpload.Uploaded?
    var agreedChecksums: [Int: UInt32] = [:]
    var brokenInARow = 0
    var notBefore = 0.0
    var recovery: (ids: [String], declaredAt: Double, lastHeard: Double)?
    var firstReportAt: [Int: Double] = [:]
    var stallReportedAt = -Double.infinity
    var lastBeatAt = -Double.infinity
    var lastEventAt: Double?
    var notMemberRepliedAt: [String: Double] = [:]
    var stopRequested = false
    var trainingStartedAt: Double?
    var stepsAtTrainingStart = 0
    /// `--local` replacements: at once, at most 2N within `respawnWindow` seconds.
    var respawns: RestartPolicy
    var limiter = LogLimiter()
    var outbox: [ControllerDirective] = []
    /// Validation reports and their sums; nil without validation.
    var validation: ValidationTracker?
    /// The checkpoint of the newest validated step, kept until that validation completes: if it
    /// is the best, it becomes `DIR/best/`.
    var validatedCheckpoint: Checkpoint?
    /// The final step's validation was the best: `DIR/best/` is written from the final state.
    var finalIsBest: BestSummary?

    /// A run of `plan`, resuming from `resumeFrom` if given, starting at `now`.
    init(plan: Plan, resumeFrom: Checkpoint?, now: Double) {
        self.plan = plan
        let settings = plan.settings
        membership = Membership(rules: .init(targetWorkers: settings.workers, minimumWorkers: settings.minWorkers,
                                             protocolVersion: FrameHeader.currentVersion,
                                             datasetFingerprint: plan.datasetFingerprint,
                                             livenessDeadline: settings.livenessDeadline))
        progress = RunProgress(worldSize: settings.workers, recipe: plan.recipe, completedStep: resumeFrom?.state.step ?? 0)
        checkpoints = Checkpoints(loaded: resumeFrom, newestStep: resumeFrom?.state.step)
        phase = .rendezvous(deadline: now + settings.rendezvousTimeout)
        respawns = RestartPolicy(limit: 2 * max(settings.workers, 1), window: Self.respawnWindow, firstBackOff: 0, longestBackOff: 0)
        if resumeFrom != nil { membership.startAtMinimum() }
        validation = plan.recipe.validation.map { ValidationTracker(plan: $0, metric: settings.bestMetric, best: plan.previousBest) }
    }

    /// Whether there is state beyond the seed that a failure now would put at risk: a checkpoint,
    /// or a live worker's replica of this run.
    var holdsState: Bool {
        checkpoints.newestStep != nil || membership.liveMembers.contains { $0.appliedStep >= 0 }
    }

    /// Takes one event; returns what to do.
    mutating func handle(_ event: ControllerEvent, now: Double) -> [ControllerDirective] {
        if case .ended = phase { return [] }
        noticeOwnSilence(now: now)
        switch event {
        case let .received(envelope, peer, address): receive(envelope, from: peer, address: address, now: now)
        case let .undecodable(error, peer): undecodable(error, from: peer, now: now)
        case let .localWorkerExited(id, status): localWorkerExited(id, status: status, now: now)
        case let .stopSignal(count): stopSignal(count: count, now: now)
        case let .writer(result): writerFinished(result, now: now)
        case let .checkpointLoaded(checkpoint): checkpointLoaded(checkpoint, now: now)
        case .tick: break
        }
        if case .ended = phase {} else { timePassed(now: now) }
        defer { outbox.removeAll() }
        return outbox
    }

    var generation: UInt64 { membership.generation }

    // MARK: Emitting

    mutating func emit(_ directive: ControllerDirective) { outbox.append(directive) }

    mutating func log(_ level: Logger.Level, _ text: String) { emit(.log(level, text)) }

    /// Sends `message` to a worker (dropped when it has no connection).
    mutating func send(_ message: Message, to workerID: String, generation: UInt64? = nil) {
        guard let peer = peers.peer(of: workerID) else { return }
        emit(.send(Envelope(generation: generation ?? membership.generation, runID: plan.runID, message: message), to: peer))
    }

    /// Sends `message` to every live member.
    mutating func broadcast(_ message: Message) {
        for member in membership.liveMembers { send(message, to: member.id) }
    }

    /// Ends the run with an error: workers are told (abort, then shutdown with status 1).
    mutating func fail(_ failure: CoordinatorFailure) {
        broadcast(.abort(Abort(reason: "run failed: \(failure)", cause: .runAborted)))
        broadcast(.shutdown(Shutdown(exitCode: 1, reason: "run failed: \(failure)")))
        emit(.record(.runFailed(reason: "\(failure)")))
        emit(.end(.failed(failure)))
        phase = .ended
    }

    mutating func countDrop(_ kind: String) { dropped[kind, default: 0] += 1 }

    // MARK: Time

    /// A long gap between events means this process was not running (SIGSTOP, a starved
    /// machine): the workers were not silent, this coordinator was deaf. Their silence in that
    /// time is excused, so nobody is declared down for it.
    private mutating func noticeOwnSilence(now: Double) {
        defer { lastEventAt = now }
        guard let last = lastEventAt, now - last > Self.ownSilenceThreshold else { return }
        log(.warning, "this coordinator did not run for \(ProgressFormat.fixed(now - last, 1)) s (stopped or starved); the workers' silence in that time does not count against them")
        membership.excuseSilence(until: now)
    }

    private mutating func timePassed(now: Double) {
        if now - lastBeatAt >= Self.heartbeatInterval {
            lastBeatAt = now
            broadcast(.heartbeat(Heartbeat(sequence: UInt64(max(now, 0) * 1000), lastAppliedStep: UInt64(progress.lastCompletedStep))))
        }
        carryOut(membership.tick(now: now), now: now)
        for id in membership.forgetLongGone(now: now) {
            peers.unbind(id)
            notMemberRepliedAt[id] = nil
        }
        switch phase {
        case let .rendezvous(deadline) where now > deadline:
            let connected = membership.liveMembers.map(\.id)
            guard !holdsState else {
                // A resumed run: the state is kept (on disk, in the workers here); wait on, saying so.
                phase = .rendezvous(deadline: now + plan.settings.rendezvousTimeout)
                log(.warning, "still waiting for workers: \(connected.count) of the \(membership.minimumNow) needed are here (\(connected.joined(separator: ", "))); the run resumes when they are, and its state is kept meanwhile (interrupt to stop)")
                break
            }
            fail(.rendezvousTimedOut(seconds: plan.settings.rendezvousTimeout, connected: connected,
                                     missingRanks: Array(connected.count..<plan.settings.workers), expected: plan.settings.workers))
        case let .starting(pending) where now >= pending.notBefore && !checkpoints.loading:
            start(pending, now: now)
        case var .finishing(target) where now - target.requestedAt > Self.finalUploadWait:
            log(.warning, "worker \(target.workerID) sent no complete state of step \(target.step) in \(Int(Self.finalUploadWait)) s; asking again")
            target.requestedAt = now
            phase = .finishing(target)
            requestFinalUpload(target)
        case let .finalizing(final) where (final.retryAt ?? .infinity) <= now:
            var retry = final
            retry.retryAt = nil
            phase = .finalizing(retry)
            writeFinal(retry)
        default:
            break
        }
        reportStalls(now: now)
    }

    /// Names ranks that have not reported a step long after another rank did (alive, per their
    /// heartbeats, but not progressing): slow is not dead, so they are waited for.
    /// Also names ranks that have not confirmed a generation's start long after their assignment.
    private mutating func reportStalls(now: Double) {
        let seconds = plan.settings.stallSeconds
        guard case .training = phase, let record = current, now - stallReportedAt > seconds else { return }
        func names(_ ranks: [Int]) -> String {
            ranks.map { rank in "rank \(rank) (\(record.ranks.first { $0.value == rank }?.key ?? "?"))" }.joined(separator: ", ")
        }
        if !record.confirmed, now - record.startedAt > seconds {
            stallReportedAt = now
            log(.warning, "stalled: generation \(record.number): \(names(progress.ranksNotStarted)) not started \(Int(now - record.startedAt)) s after the assignment (forming the ring, agreeing on the state); still alive per heartbeats")
            return
        }
        guard let (step, missing) = progress.oldestIncompleteStep, !missing.isEmpty,
              let first = firstReportAt[step], now - first > seconds else { return }
        stallReportedAt = now
        log(.warning, "stalled: \(names(missing)) not done with step \(step) \(Int(now - first)) s after the first rank reported it; still alive per heartbeats")
    }

    // MARK: Signals and local workers

    private mutating func stopSignal(count: Int, now: Double) {
        switch phase {
        case .rendezvous where count > 1 || !membership.liveMembers.contains(where: { $0.appliedStep >= 0 }):
            fail(.interruptedBeforeTraining)
        case .rendezvous:
            // Workers that hold the run's state are here: they train a step and save it.
            stopRequested = true
            membership.waiveMinimum()
            log(.notice, "stop requested before the run resumed: the workers here hold its state; they train one step to save it")
            carryOut(membership.formGenerationOfTheLive(), now: now)
        case .ended:
            break
        case .finalizing where count == 1:
            log(.notice, "stop requested: the final state is being written; interrupt again to end without it")
        case _ where count > 1:
            fail(.interruptedTwice)
        case .finishing, .finalizing:
            break
        case .training, .starting, .paused:
            guard !stopRequested else { return }
            stopRequested = true
            // From now on any live worker is enough for a generation: it stops and saves.
            membership.waiveMinimum()
            log(.notice, "stop requested: workers stop after the next step; the state of that step is saved")
            for member in membership.ranked { send(.stopRequest(StopRequest(reason: "interrupted")), to: member.id) }
            if case .paused = phase {
                let directives = membership.formGenerationOfTheLive()
                if directives.isEmpty {
                    fail(.interruptedWhilePaused(checkpointStep: checkpoints.newestStep))
                } else {
                    log(.notice, "paused with \(membership.liveMembers.count) live worker(s): they train one more step to save the state")
                    carryOut(directives, now: now)
                }
            }
        }
    }

    private mutating func localWorkerExited(_ id: String, status: Int32, now: Double) {
        switch phase {
        case .ended, .finalizing: return
        default: break
        }
        log(.warning, "local worker \(id) exited with status \(status)")
        carryOut(membership.lost(id, now: now), now: now)
        let limit = respawns.limit
        if respawns.grantRestart(now: now) != nil {
            emit(.respawnLocalWorker(id))
        } else if membership.liveMembers.isEmpty {
            fail(.localWorkerExited(workerID: id, status: status))
        } else {
            log(.error, "local worker \(id) is not replaced: \(limit) replacements in the last \(Int(Self.respawnWindow)) s; the run goes on with \(membership.liveMembers.count) worker(s)")
        }
    }
}

/// Which connection each admitted worker uses, and what its hello said that generations need.
struct PeerBook: Equatable {
    private var peers: [String: PeerID] = [:]
    private var workers: [PeerID: String] = [:]
    /// The CURVE public key each worker announced (given to its ring neighbours).
    var curvePublicKeys: [String: String] = [:]
    /// The shared-memory identity each worker announced; removed when its shared-memory ring failed.
    var sharedMemoryHosts: [String: String] = [:]
    /// Workers whose shared-memory ring failed: TCP rings from then on, whatever their hellos say.
    var tcpOnly: Set<String> = []

    func peer(of workerID: String) -> PeerID? { peers[workerID] }
    /// Connections remembered (one per admitted worker id).
    var count: Int { peers.count }
    func worker(of peer: PeerID) -> String? { workers[peer] }

    /// Forgets `workerID` and its connection (a worker gone long ago).
    mutating func unbind(_ workerID: String) {
        if let peer = peers.removeValue(forKey: workerID) { workers[peer] = nil }
        curvePublicKeys[workerID] = nil
        sharedMemoryHosts[workerID] = nil
        tcpOnly.remove(workerID)
    }

    /// `workerID` now speaks through `peer` (a new connection replaces the old one).
    mutating func bind(_ workerID: String, to peer: PeerID, hello: Hello) {
        if let old = peers[workerID] { workers[old] = nil }
        peers[workerID] = peer
        workers[peer] = workerID
        curvePublicKeys[workerID] = hello.curvePublicKey
        sharedMemoryHosts[workerID] = tcpOnly.contains(workerID) ? nil : hello.sharedMemoryIdentity
    }
}

/// Keeps repeated warnings to one line per kind every `interval` seconds, saying how many were
/// left out, so a peer sending garbage cannot flood the log.
struct LogLimiter: Equatable {
    var interval = 10.0
    private var lastAt: [String: Double] = [:]
    private var suppressed: [String: Int] = [:]

    /// Whether a line of `kind` may be written now (at most one per `interval`, default the
    /// limiter's), and how many were left out before it.
    mutating func allow(_ kind: String, now: Double, interval: Double? = nil) -> (allowed: Bool, leftOut: Int) {
        if let last = lastAt[kind], now - last < (interval ?? self.interval) {
            suppressed[kind, default: 0] += 1
            return (false, 0)
        }
        lastAt[kind] = now
        let leftOut = suppressed[kind] ?? 0
        suppressed[kind] = 0
        return (true, leftOut)
    }
}
