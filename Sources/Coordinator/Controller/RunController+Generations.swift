import Checkpoints
import Logging
import Wire

/// Where a generation's state comes from, decided from what the coordinator knows: the replicas
/// its workers hold (their hellos and step reports) and the newest checkpoint on disk.
enum StateSource: Equatable, Sendable {
    /// The most advanced replica among the ranks (they agree on it in the ring and it broadcasts).
    case replicas(step: Int)
    /// The checkpoint of `step`: the coordinator sends it to rank 0, which broadcasts it.
    case checkpoint(step: Int)
    /// A fresh start: rank 0 initialises from the seed.
    case seed

    /// The newest state wins; a replica wins a tie with a checkpoint (it needs no transfer).
    /// Work a live process holds is never thrown away for an older checkpoint or the seed.
    static func choose(replicaSteps: [Int], newestCheckpoint: Int?) -> StateSource {
        let best = replicaSteps.max() ?? -1
        if best >= 0 && best >= (newestCheckpoint ?? -1) { return .replicas(step: best) }
        if let newestCheckpoint { return .checkpoint(step: newestCheckpoint) }
        return .seed
    }
}

extension RunController {
    /// Membership formed generation `generation`: start it now, or as soon as its state is
    /// available and any back-off has passed. A newer generation replaces a waiting one.
    mutating func formed(_ generation: UInt64, placements: [Membership.Placement], now: Double) {
        upload = nil
        parkedUpload = nil
        start(PendingGeneration(generation: generation, placements: placements, notBefore: notBefore), now: now)
    }

    /// Starts `pending` if it can start now; otherwise it waits in `.starting`.
    mutating func start(_ pending: PendingGeneration, now: Double) {
        guard pending.generation == membership.generation else { return }
        phase = .starting(pending)
        if now < pending.notBefore { return }
        let steps = pending.placements.map { membership.members[$0.workerID]?.appliedStep ?? -1 }
        let source = StateSource.choose(replicaSteps: steps, newestCheckpoint: checkpoints.newestStep)
        if case let .checkpoint(step) = source, checkpoints.loaded?.state.step != step {
            guard !checkpoints.loading else { return }
            checkpoints.loading = true
            log(.notice, "generation \(pending.generation): no live worker holds a replica as new as the checkpoint of step \(step); loading it")
            emit(.loadNewestCheckpoint)
            return
        }
        sendAssignments(pending, source: source, now: now)
    }

    /// The newest valid checkpoint, loaded off the loop for a waiting generation.
    mutating func checkpointLoaded(_ checkpoint: Checkpoint?, now: Double) {
        checkpoints.loading = false
        if let checkpoint {
            checkpoints.loaded = checkpoint
            checkpoints.newestStep = checkpoint.state.step
        } else {
            log(.warning, "no valid checkpoint in \(plan.settings.outputDirectory) after all; the next generation starts from the replicas or the seed")
            checkpoints.loaded = nil
            checkpoints.newestStep = nil
        }
        if case let .starting(pending) = phase { start(pending, now: now) }
    }

    private mutating func sendAssignments(_ pending: PendingGeneration, source: StateSource, now: Double) {
        let placements = pending.placements
        let generation = pending.generation
        let transport: RingTransportChoice.Decision
        do {
            transport = try RingTransportChoice.decide(mode: plan.settings.ringTransportMode, ranks: placements.sorted { $0.rank < $1.rank }.map {
                RingTransportChoice.Rank(workerID: $0.workerID, sharedMemoryHost: peers.sharedMemoryHosts[$0.workerID])
            })
        } catch {
            fail(.ringTransport(error))
            return
        }
        let first = trainingStartedAt == nil
        let (origin, startStep): (StateOrigin, Int)
        switch source {
        case let .replicas(step): (origin, startStep) = (.replicas, step)
        case let .checkpoint(step): (origin, startStep) = (.checkpoint, step)
        case .seed: (origin, startStep) = (.seed, 0)
        }
        ringTransport = transport.kind
        phase = .training
        if first {
            trainingStartedAt = now
            stepsAtTrainingStart = startStep
        }
        let ranks = Dictionary(uniqueKeysWithValues: placements.map { ($0.workerID, $0.rank) })
        current = GenerationRecord(number: generation, ranks: ranks, origin: origin, startStep: startStep, startedAt: now)
        progress = RunProgress(worldSize: placements.count, recipe: plan.recipe, completedStep: startStep)
        firstReportAt.removeAll()
        // Steps after the start are computed anew (perhaps by other ranks, other bits): checksums
        // agreed for them before no longer hold.
        agreedChecksums = agreedChecksums.filter { $0.key <= startStep }
        let described = Self.describe(source)
        let ranksText = placements.map { "\($0.rank)=\($0.workerID)" }.joined(separator: " ")
        let ringLine: String
        switch transport {
        case .sharedMemory: ringLine = "ring over shared memory"
        case let .tcp(reason): ringLine = "ring over tcp (\(reason))"
        }
        if first {
            log(.info, "generation \(generation): \(placements.count) ranks \(ranksText), \(ringLine); training \(plan.settings.config) for \(plan.totalSteps) steps, global batch \(plan.settings.globalBatch), state from \(described)")
        } else {
            log(.notice, "generation \(generation): \(placements.count) ranks \(ranksText), \(ringLine); continuing after step \(startStep), state from \(described)")
        }
        emit(.record(.generationStarted(generation: generation, workers: placements.map(\.workerID), stateFrom: described, step: startStep)))
        let sourceRank = 0
        if origin == .checkpoint, let checkpoint = checkpoints.loaded, let rank0 = placements.first(where: { $0.rank == sourceRank }) {
            sendRestore(checkpoint, to: rank0.workerID, generation: generation)
        }
        let cursor = plan.sampler.cursor(afterSteps: startStep)
        var recipe = plan.recipe
        recipe.validateAtStart = validation?.newGeneration()
        let settingsJSON = recipe.json
        for placement in placements {
            let assignment = Assignment(
                rank: UInt32(placement.rank), worldSize: UInt32(placements.count), generation: generation,
                previous: peer(placement.previousWorkerID, transport: transport, generation: generation, ranks: ranks),
                next: peer(placement.nextWorkerID, transport: transport, generation: generation, ranks: ranks),
                configurationName: plan.settings.config, settingsJSON: settingsJSON,
                cursor: ShardCursor(epoch: UInt64(cursor.epoch), step: UInt64(cursor.step)),
                globalBatch: UInt32(plan.settings.globalBatch), seed: plan.settings.seed, stateSourceRank: UInt32(sourceRank),
                stateOrigin: origin, resumeStep: UInt64(startStep),
                ringTransport: transport.kind,
                ringEndpoint: endpoint(placement.workerID, transport: transport, generation: generation, ranks: ranks))
            send(.assignment(assignment), to: placement.workerID, generation: generation)
        }
        if stopRequested {
            for placement in placements { send(.stopRequest(StopRequest(reason: "interrupted")), to: placement.workerID, generation: generation) }
        }
    }

    private func endpoint(_ workerID: String, transport: RingTransportChoice.Decision, generation: UInt64, ranks: [String: Int]) -> String {
        switch transport {
        case .sharedMemory:
            SharedMemoryEndpoint.endpoint(runID: plan.runID, generation: generation, rank: ranks[workerID] ?? 0)
        case .tcp:
            membership.members[workerID]?.dataPlaneEndpoint ?? ""
        }
    }

    private func peer(_ workerID: String, transport: RingTransportChoice.Decision, generation: UInt64, ranks: [String: Int]) -> RingPeer {
        RingPeer(rank: UInt32(ranks[workerID] ?? 0), endpoint: endpoint(workerID, transport: transport, generation: generation, ranks: ranks),
                 curvePublicKey: peers.curvePublicKeys[workerID])
    }

    static func describe(_ source: StateSource) -> String {
        switch source {
        case .seed: "the seed"
        case let .checkpoint(step): "the checkpoint of step \(step)"
        case let .replicas(step): "the most advanced replica (step \(step))"
        }
    }

    /// The checkpoint's tensors, then `restore`, to the rank that loads and broadcasts them, in
    /// frames of the new generation (so a worker can tell them from an older transfer).
    private mutating func sendRestore(_ checkpoint: Checkpoint, to workerID: String, generation: UInt64) {
        let step = UInt64(checkpoint.state.step)
        for (transfer, tensors) in [(TransferKind.parameters, checkpoint.model), (.optimizerState, checkpoint.optimizer)] {
            for chunk in TensorChunk.chunks(transfer: transfer, step: step, float32: tensors.map { ($0.name, $0.shape, $0.data) }) {
                send(.tensorChunk(chunk), to: workerID, generation: generation)
            }
        }
        send(.checkpoint(CheckpointCommand(action: .restore, step: step, epoch: UInt64(checkpoint.state.epoch),
                                           optimizerStep: UInt64(checkpoint.state.optimizerStep))),
             to: workerID, generation: generation)
        log(.info, "sent the checkpoint of step \(step) to \(workerID) (\(checkpoint.model.count) + \(checkpoint.optimizer.count) tensors)")
    }
}
