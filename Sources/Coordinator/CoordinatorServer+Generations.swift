import Data
import Foundation
import Wire

extension CoordinatorServer {
    /// Where a new generation's state comes from: the replicas when one of its workers holds a
    /// replica of this coordinator's run, else the checkpoint resumed from (or, after every
    /// holder was lost, the newest one on disk), else the seed.
    func stateOrigin(for placements: [Membership.Placement]) -> StateOrigin {
        if placements.contains(where: { replicaHolders.contains($0.workerID) }) { return .replicas }
        if replicasSynchronised {
            // Every worker that held the state is gone: back to the newest checkpoint.
            resumeFrom = writer.waitUntilIdle(timeout: .seconds(600))
                ? writer.store.loadNewestValid(warning: { logger.warning("\($0)") }) : nil
            replicasSynchronised = false
            progress = RunProgress(worldSize: progress.worldSize, recipe: recipe, completedStep: resumeFrom?.state.step ?? 0)
            logger.warning("no live worker holds the run's state: restarting from \(resumeFrom.map { "the checkpoint of step \($0.state.step)" } ?? "the seed (no checkpoint yet)")")
        }
        return resumeFrom == nil ? .seed : .checkpoint
    }

    /// Sends every rank its assignment (and, resuming, the checkpoint's state to rank 0 first).
    func startGeneration(_ generation: UInt64, placements: [Membership.Placement], guessedSource: Int) throws {
        let transport = try chooseRingTransport(for: placements)
        ringTransport = transport.kind
        let origin = stateOrigin(for: placements)
        let world = placements.count
        let first: Bool
        if case .rendezvous = phase { first = true } else { first = false }
        phase = .training
        if trainingStart == nil { trainingStart = .now }
        logger[metadataKey: "generation"] = "\(generation)"
        placementsByWorker = Dictionary(uniqueKeysWithValues: placements.map { ($0.workerID, $0.rank) })
        progress = RunProgress(worldSize: world, recipe: recipe, completedStep: progress.lastCompletedStep)
        upload = nil
        parkedUpload = nil
        firstReportAt.removeAll()
        let source = origin == .replicas ? guessedSource : 0
        let resumeStep = origin == .checkpoint ? resumeFrom?.state.step ?? 0 : progress.lastCompletedStep
        let ranks = placements.map { "\($0.rank)=\($0.workerID)" }.joined(separator: " ")
        let ringLine: String
        switch transport {
        case .sharedMemory: ringLine = "ring over shared memory"
        case let .tcp(reason): ringLine = "ring over tcp (\(reason))"
        }
        if first {
            logger.info("generation \(generation): \(world) ranks \(ranks), \(ringLine); training \(settings.config) for \(totalSteps) steps, global batch \(settings.globalBatch), state from \(Self.describe(origin, step: resumeStep))")
        } else {
            logger.notice("generation \(generation): \(world) ranks \(ranks), \(ringLine); continuing after step \(progress.lastCompletedStep), state from \(Self.describe(origin, step: resumeStep))")
        }
        if origin == .checkpoint, let checkpoint = resumeFrom,
           let sourceID = placements.first(where: { $0.rank == source })?.workerID {
            sendRestore(checkpoint, to: sourceID, generation: generation)
        }
        func endpoint(_ id: String) -> String {
            switch transport {
            case .sharedMemory:
                SharedMemoryEndpoint.endpoint(runID: runID, generation: generation, rank: placementsByWorker[id] ?? 0)
            case .tcp:
                membership.members[id]?.dataPlaneEndpoint ?? ""
            }
        }
        func peer(_ id: String) -> RingPeer {
            RingPeer(rank: UInt32(placementsByWorker[id] ?? 0), endpoint: endpoint(id), curvePublicKey: curvePublicKeys[id])
        }
        let cursor = sampler.cursor(afterSteps: resumeStep)
        for placement in placements {
            let assignment = Assignment(
                rank: UInt32(placement.rank), worldSize: UInt32(world), generation: generation,
                previous: peer(placement.previousWorkerID), next: peer(placement.nextWorkerID),
                configurationName: settings.config, settingsJSON: recipe.json,
                cursor: ShardCursor(epoch: UInt64(cursor.epoch), step: UInt64(cursor.step)),
                globalBatch: UInt32(settings.globalBatch), seed: settings.seed, stateSourceRank: UInt32(source),
                stateOrigin: origin, resumeStep: UInt64(resumeStep),
                ringTransport: transport.kind, ringEndpoint: endpoint(placement.workerID))
            send(.assignment(assignment), to: placement.workerID, generation: generation)
        }
        if stopSent { sendStopRequests() }
    }

    /// Shared memory or TCP for a generation of `placements` (--ring-transport, the workers' hellos).
    func chooseRingTransport(for placements: [Membership.Placement]) throws -> RingTransportChoice.Decision {
        let ranks = placements.sorted { $0.rank < $1.rank }.map {
            RingTransportChoice.Rank(workerID: $0.workerID, sharedMemoryHost: sharedMemoryHosts[$0.workerID])
        }
        do {
            return try RingTransportChoice.decide(mode: settings.ringTransportMode, ranks: ranks)
        } catch {
            throw CoordinatorFailure.ringTransport(error)
        }
    }

    static func describe(_ origin: StateOrigin, step: Int) -> String {
        switch origin {
        case .seed: "the seed"
        case .checkpoint: "the checkpoint of step \(step)"
        case .replicas: "the most advanced replica"
        }
    }

    /// The checkpoint's tensors, then `restore`, to the rank that loads and broadcasts them.
    private func sendRestore(_ checkpoint: Checkpoint, to workerID: String, generation: UInt64) {
        let step = UInt64(checkpoint.state.step)
        for (transfer, tensors) in [(TransferKind.parameters, checkpoint.model), (.optimizerState, checkpoint.optimizer)] {
            for chunk in TensorChunk.chunks(transfer: transfer, step: step, float32: tensors.map { ($0.name, $0.shape, $0.data) }) {
                send(.tensorChunk(chunk), to: workerID, generation: generation)
            }
        }
        send(.checkpoint(CheckpointCommand(action: .restore, step: step, epoch: UInt64(checkpoint.state.epoch),
                                           optimizerStep: UInt64(checkpoint.state.optimizerStep))),
             to: workerID, generation: generation)
        logger.info("sent the checkpoint of step \(step) to \(workerID) (\(checkpoint.model.count) + \(checkpoint.optimizer.count) tensors)")
    }
}
