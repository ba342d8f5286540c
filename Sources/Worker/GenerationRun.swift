import Dataset
import Foundation
import Logging
import Model
import Wire

/// One generation on one rank: the ring with this generation's neighbours, the state every
/// rank starts from, then the training loop. Whatever happens, it ends with a
/// `WorkerProtocol.GenerationEnd` for the session's protocol machine: nothing here exits the
/// process.
struct GenerationRun {
    let assignment: Assignment
    let runID: UInt64
    let session: WorkerSession
    let index: TrainingData

    private var logger: Logger {
        var logger = session.logger
        logger[metadataKey: "rank"] = "\(assignment.rank)"
        logger[metadataKey: "generation"] = "\(assignment.generation)"
        return logger
    }

    /// Runs the generation; `epoch`: the sampler's epoch after the last step, when it finished.
    func execute() -> (end: WorkerProtocol.GenerationEnd, epoch: Int?) {
        do {
            return try run()
        } catch let failure as WorkerFailure {
            return (.workerFailed(reason: "\(failure)"), nil)
        } catch {
            return (.workerFailed(reason: "\(error)"), nil)
        }
    }

    private func run() throws -> (end: WorkerProtocol.GenerationEnd, epoch: Int?) {
        let rank = Int(assignment.rank), world = Int(assignment.worldSize), generation = assignment.generation
        let logger = self.logger
        let control = session.control
        control.setHeader(runID: runID, generation: generation)
        guard let named = ModelConfig.named(assignment.configurationName) else {
            throw WorkerFailure.unknownConfiguration(assignment.configurationName)
        }
        let recipe: TrainingRecipe
        do { recipe = try TrainingRecipe.decode(assignment.settingsJSON) } catch { throw WorkerFailure.recipe(error) }
        let config = named.applying(recipe)
        let sampler: Sampler
        do {
            sampler = try Sampler(sampleCount: index.count, globalBatch: Int(assignment.globalBatch), seed: assignment.seed,
                                  windows: index.shardWindows(recipe.shardWindow ?? 0))
        } catch {
            throw WorkerFailure.sampler("\(error)")
        }
        let lineage = RunLineage(config: config.name, datasetFingerprint: index.fingerprint, globalBatch: Int(assignment.globalBatch),
                                 seed: assignment.seed, optimizer: recipe.optimizer).id
        var validator: Validator?
        if let plan = recipe.validation {
            do { validator = try session.validator(for: plan, config: config) } catch { throw WorkerFailure.validation("\(error)") }
        }
        let slice = Sampler.sliceRange(rank: rank, worldSize: world, globalBatch: Int(assignment.globalBatch)).count
        let state = session.replicaState
        let replica = state.prepare(config: config, recipe: recipe, microBatch: min(recipe.microBatch, max(slice, 1)))

        let timeline = recipe.timeline == true ? TimelineRecorder() : nil
        let generationStart = ContinuousClock.now
        let ring: GenerationRing
        switch formRing() {
        case let .formed(formed): ring = formed
        case let .ended(end): return (end, nil)
        }
        defer { ring.close() }
        let collectives = ring.collectives

        let startStep: Int
        do {
            switch try agree(replica: replica, collectives: collectives, lineage: lineage) {
            case let .agreed(step): startStep = step
            case let .missing(reason): return (.stateMissing(reason: reason), nil)
            }
        } catch let error as RingError {
            return (.ringFailed(step: state.appliedStep + 1, reason: "\(error)", peer: error.peerRank), nil)
        }
        timeline?.add("generation \(generation): ring and state agreement", generationStart..<ContinuousClock.now)
        state.synchronised(step: startStep, lineage: lineage)
        control.setApplied(step: UInt64(startStep))
        let start = sampler.cursor(afterSteps: startStep)
        control.send(.workerStatus(WorkerStatus(workerID: session.workerID, lastAppliedStep: UInt64(startStep),
                                                cursor: ShardCursor(epoch: UInt64(start.epoch), step: UInt64(start.step)),
                                                parameterChecksum: parameterChecksum(replica.parameters))))
        logger.info("rank \(rank) of \(world), ring over \(ring.transport): \(config.name), slice of \(slice) images per step, from step \(startStep) (\(start)), \(max(recipe.totalSteps - startStep, 0)) steps to go")

        let session = self.session
        let loop = TrainingLoop(replica: replica, state: state, sampler: sampler, recipe: recipe, index: index, rank: rank,
                                world: world, startStep: startStep, collectives: collectives, generation: generation,
                                runID: runID, control: control, dataOrderLog: session.log, workerID: session.workerID,
                                validator: validator, timeline: timeline, logger: logger, check: { session.checkControl() })
        if recipe.validateAtStart == startStep, recipe.validates(afterStep: startStep) {
            // The validation of this step was cut short by the end of the last generation.
            logger.info("validating step \(startStep) again: the last generation ended during its validation")
            guard loop.validate(step: startStep) else { return (.interrupted, nil) }
        }
        timeline?.flush(rank: rank, step: startStep, control: control)
        switch try loop.run() {
        case let .finished(steps, cursor):
            control.send(.workerStatus(WorkerStatus(
                workerID: session.workerID, lastAppliedStep: UInt64(steps),
                cursor: ShardCursor(epoch: UInt64(cursor.epoch), step: UInt64(cursor.step)),
                parameterChecksum: parameterChecksum(replica.parameters))))
            return (.finished, cursor.epoch)
        case let .ended(end):
            return (end, nil)
        }
    }

    /// This generation's ring on the transport the assignment names (`GenerationRing`).
    private enum RingForming {
        case formed(GenerationRing)
        case ended(WorkerProtocol.GenerationEnd)
    }

    private func formRing() -> RingForming {
        guard let sessionRing = session.ring, let settings = session.ringSettings else {
            return .ended(.workerFailed(reason: "the collective thread is gone"))
        }
        let step = session.replicaState.appliedStep + 1
        do throws(GenerationRing.Failure) {
            return .formed(try GenerationRing.form(assignment, runID: runID, sessionRing: sessionRing, settings: settings,
                                                    curveKeyOfNext: session.curve == nil ? nil : assignment.next.curvePublicKey))
        } catch {
            switch error {
            case let .transportUnavailable(error):
                logger.warning("cannot set up the \(assignment.ringTransport) ring: \(error)")
                return .ended(.transportUnavailable(reason: "\(assignment.ringTransport) ring: \(error)"))
            case let .ring(.unreachable(peer, endpoint, seconds)):
                return .ended(.nextRankUnreachable(peer: peer, reason: "\(RingError.unreachable(rank: peer, endpoint: endpoint, seconds: seconds))"))
            case let .ring(error):
                return .ended(.ringFailed(step: step, reason: "\(error)", peer: error.peerRank))
            }
        }
    }

    private enum Agreement {
        case agreed(step: Int)
        /// The state the assignment named is not here; the reason says which.
        case missing(String)
    }

    /// Brings every rank to the same state; returns the steps it has applied.
    private func agree(replica: TrainingReplica, collectives: CollectiveThread, lineage: UInt64) throws -> Agreement {
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
                let step = Int(assignment.resumeStep)
                guard let restored = session.takeRestore(step: step, generation: generation) else {
                    return .missing("the checkpoint of step \(step) the assignment names has not arrived")
                }
                state.unsynchronise()
                do { try RestoreStash.load(restored, into: replica) } catch {
                    return .missing("\(error)")
                }
                ownStep = restored.step
            }
        case .replicas:
            var bids = StateAgreement.contribution(rank: rank, worldSize: world, bid: state.bid(lineage: lineage))
            try AbandonedBuffers.collective(&bids, on: collectives) { collectives.allReduce($0, generation: generation) }
            guard let decision = StateAgreement.decide(StateAgreement.bids(bids, worldSize: world)) else {
                return .missing("no rank of generation \(generation) holds a replica of this run")
            }
            source = decision.source
            broadcastNeeded = decision.broadcastNeeded
            if rank == source { ownStep = decision.step }
            if !broadcastNeeded { return .agreed(step: decision.step) }
            logger.info("state agreement: rank \(source) holds the most advanced replica (step \(decision.step)); broadcasting it")
        }
        guard broadcastNeeded else { return .agreed(step: ownStep ?? 0) }
        var vector = rank == source ? StateVector.pack(replica, appliedStep: ownStep ?? 0) : StateVector.empty(like: replica)
        try AbandonedBuffers.collective(&vector, on: collectives) { collectives.broadcast($0, root: source, generation: generation) }
        if rank == source { return .agreed(step: ownStep ?? 0) }
        // The replica is overwritten only once the whole vector has arrived.
        state.unsynchronise()
        return .agreed(step: StateVector.unpack(vector, into: replica))
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
             let .transport(rank, _), let .unreachable(rank, _, _):
            rank
        case .bufferStillInUse, .collectiveThreadTimedOut, .collectiveThreadStopped:
            nil
        }
    }
}
