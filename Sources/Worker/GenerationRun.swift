import Data
import Foundation
import Logging
import Model
import Wire

/// One generation on one rank: the ring with this generation's neighbours, the state every
/// rank starts from, then the training loop.
struct GenerationRun {
    let assignment: Assignment
    let runID: UInt64
    let session: WorkerSession
    let index: TrainingData
    let dataEndpoint: String
    let coordinatorDeadline: Double

    private var logger: Logger {
        var logger = session.logger
        logger[metadataKey: "rank"] = "\(assignment.rank)"
        logger[metadataKey: "generation"] = "\(assignment.generation)"
        return logger
    }

    func execute() throws -> TrainingLoop.Ending {
        let rank = Int(assignment.rank), world = Int(assignment.worldSize), generation = assignment.generation
        let logger = self.logger
        let control = session.control
        control.setHeader(runID: runID, generation: generation)
        guard let config = ModelConfig.named(assignment.configurationName) else {
            throw WorkerFailure.unknownConfiguration(assignment.configurationName)
        }
        let recipe: TrainingRecipe
        do { recipe = try TrainingRecipe.decode(assignment.settingsJSON) } catch { throw WorkerFailure.recipe(error) }
        let sampler: Sampler
        do {
            sampler = try Sampler(sampleCount: index.count, globalBatch: Int(assignment.globalBatch), seed: assignment.seed)
        } catch {
            throw WorkerFailure.sampler("\(error)")
        }
        let slice = Sampler.sliceRange(rank: rank, worldSize: world, globalBatch: Int(assignment.globalBatch)).count
        let state = session.replicaState
        let replica = state.prepare(config: config, recipe: recipe, microBatch: min(recipe.microBatch, max(slice, 1)))

        let ring: GenerationRing
        switch try formRing() {
        case let .formed(formed): ring = formed
        case let .interrupted(interruption): return .interrupted(reason: interruption)
        }
        defer { ring.close() }
        let collectives = ring.collectives

        let startStep: Int
        do {
            guard let agreed = try agree(replica: replica, collectives: collectives) else {
                throw WorkerFailure.restore("state agreement of generation \(generation): no rank holds a replica of this run")
            }
            startStep = agreed
        } catch let error as RingError {
            return .interrupted(reason: interruption(orRingFailure: "\(error)", step: state.appliedStep + 1, peer: error.peerRank))
        }
        state.synchronised(step: startStep, runID: runID)
        control.setApplied(step: UInt64(startStep))
        let start = sampler.cursor(afterSteps: startStep)
        control.send(.workerStatus(WorkerStatus(workerID: session.workerID, lastAppliedStep: UInt64(startStep),
                                                cursor: ShardCursor(epoch: UInt64(start.epoch), step: UInt64(start.step)),
                                                parameterChecksum: parameterChecksum(replica.parameters))))
        logger.info("rank \(rank) of \(world), ring over \(ring.transport): \(config.name), slice of \(slice) images per step, from step \(startStep) (\(start)), \(max(recipe.totalSteps - startStep, 0)) steps to go")

        let loop = TrainingLoop(replica: replica, state: state, sampler: sampler, recipe: recipe, index: index, rank: rank,
                                world: world, startStep: startStep, collectives: collectives, generation: generation,
                                runID: runID, control: control, coordinatorDeadline: coordinatorDeadline, dataOrderLog: session.log,
                                workerID: session.workerID, logger: logger)
        let ending = try loop.run()
        if case let .finished(steps, cursor) = ending {
            control.send(.workerStatus(WorkerStatus(
                workerID: session.workerID, lastAppliedStep: UInt64(steps),
                cursor: ShardCursor(epoch: UInt64(cursor.epoch), step: UInt64(cursor.step)),
                parameterChecksum: parameterChecksum(replica.parameters))))
        }
        return ending
    }

    /// Why the generation cannot go on after a failed collective: what the control channel
    /// says (a newer generation, a lost coordinator), else the ring failure itself.
    private func interruption(orRingFailure reason: String, step: Int, peer: Int?) -> TrainingLoop.Interruption {
        let control = session.control
        if let envelope = control.poll() {
            control.putBack(envelope)
            if case let .assignment(next) = envelope.message, next.generation > assignment.generation { return .newGeneration }
            if case let .refuse(body) = envelope.message, body.reason == .notMember { return .droppedFromRun }
        }
        if !control.generationIsCurrent(assignment.generation, coordinatorDeadline: coordinatorDeadline) {
            let silence = control.coordinatorSilence
            return silence > coordinatorDeadline ? .coordinatorLost(seconds: silence) : .newGeneration
        }
        return .ringFailed(step: step, reason: reason, peer: peer)
    }

    /// This generation's ring on the transport the assignment names (`GenerationRing`).
    private enum RingForming {
        case formed(GenerationRing)
        case interrupted(TrainingLoop.Interruption)
    }

    private func formRing() throws -> RingForming {
        guard let sessionRing = session.ring, let settings = session.ringSettings else {
            throw WorkerFailure.ring(step: 0, .collectiveThreadStopped(job: "reform"))
        }
        let step = session.replicaState.appliedStep + 1
        do throws(GenerationRing.Failure) {
            return .formed(try GenerationRing.form(assignment, runID: runID, sessionRing: sessionRing, settings: settings,
                                                    curveKeyOfNext: session.curve == nil ? nil : assignment.next.curvePublicKey))
        } catch let .transportUnavailable(error) {
            logger.warning("cannot set up the \(assignment.ringTransport) ring: \(error)")
            return .interrupted(.transportUnavailable(reason: "\(assignment.ringTransport) ring: \(error)"))
        } catch let .ring(error) {
            return .interrupted(interruption(orRingFailure: "\(error)", step: step, peer: error.peerRank))
        }
    }

    /// Brings every rank to the same state; returns the steps it has applied, or nil when no
    /// rank holds a replica of this run (a `.replicas` generation that cannot start).
    private func agree(replica: TrainingReplica, collectives: CollectiveThread) throws -> Int? {
        let rank = Int(assignment.rank), world = Int(assignment.worldSize), generation = assignment.generation
        let state = session.replicaState
        var source = Int(assignment.stateSourceRank)
        var broadcastNeeded = world > 1
        var ownStep: Int?
        switch assignment.stateOrigin {
        case .seed:
            if rank == source {
                state.unsynchronise()
                replica.parameters.withUnsafeMutableBufferPointer {
                    initializeParameters($0, layout: replica.model.layout, config: replica.model.config, seed: assignment.seed)
                }
                replica.optimizer = Optimizer(settings: replica.optimizer.settings, parameterCount: replica.parameterCount)
                ownStep = 0
            }
        case .checkpoint:
            if rank == source {
                guard let restored = session.takeRestoredState() else {
                    throw WorkerFailure.restore("the assignment says the coordinator sent a checkpoint, but none arrived")
                }
                state.unsynchronise()
                do { try RestoreReceiver.load(restored, into: replica) } catch { throw WorkerFailure.restore("\(error)") }
                ownStep = restored.step
            }
        case .replicas:
            var bids = StateAgreement.contribution(rank: rank, worldSize: world, bid: state.bid(runID: runID))
            try AbandonedBuffers.collective(&bids, on: collectives) { collectives.allReduce($0, generation: generation) }
            guard let decision = StateAgreement.decide(StateAgreement.bids(bids, worldSize: world)) else { return nil }
            source = decision.source
            broadcastNeeded = decision.broadcastNeeded
            if rank == source { ownStep = decision.step }
            if !broadcastNeeded { return decision.step }
            logger.info("state agreement: rank \(source) holds the most advanced replica (step \(decision.step)); broadcasting it")
        }
        guard broadcastNeeded else { return ownStep ?? 0 }
        var vector = rank == source ? StateVector.pack(replica, appliedStep: ownStep ?? 0) : StateVector.empty(like: replica)
        try AbandonedBuffers.collective(&vector, on: collectives) { collectives.broadcast($0, root: source, generation: generation) }
        if rank == source { return ownStep ?? 0 }
        state.unsynchronise()
        return StateVector.unpack(vector, into: replica)
    }
}

/// Runs one collective on an array and waits for it. After `RingError.bufferStillInUse` libzmq
/// may still read the array's storage, so it is kept alive here for the rest of the process.
final class AbandonedBuffers: @unchecked Sendable {
    private static let shared = AbandonedBuffers()
    private let lock = NSLock()
    private var kept: [[Float]] = []

    static func collective(_ array: inout [Float], on collectives: CollectiveThread,
                           _ submit: (UnsafeMutableBufferPointer<Float>) -> CollectiveThread.Ticket) throws(RingError) {
        var failure: RingError?
        array.withUnsafeMutableBufferPointer { buffer in
            do throws(RingError) { _ = try collectives.wait(submit(buffer)) } catch { failure = error }
        }
        guard let failure else { return }
        if case .bufferStillInUse = failure {
            shared.lock.lock()
            shared.kept.append(array)
            shared.lock.unlock()
        }
        throw failure
    }
}

extension RingError {
    /// The neighbour a failure names, when it names one.
    var peerRank: Int? {
        switch self {
        case let .peerSilent(rank, _, _, _, _), let .sendStalled(rank, _, _), let .newerGeneration(rank, _, _),
             let .unexpectedPiece(rank, _, _), let .badFrame(rank, _), let .dataChecksum(rank, _, _, _, _),
             let .transport(rank, _):
            rank
        case .bufferStillInUse, .collectiveThreadTimedOut, .collectiveThreadStopped:
            nil
        }
    }
}
