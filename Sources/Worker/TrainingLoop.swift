import Images
import Dataset
import Foundation
import Logging
import Model
import Wire

/// The steps of one generation on one rank: batches from the prefetcher, the replica's step with
/// the ring as reducer, a report per step to the coordinator, rank 0's checkpoint uploads.
/// Between steps it asks the session whether the generation must end (`check`).
struct TrainingLoop {
    let replica: TrainingReplica
    let state: ReplicaState
    let sampler: Sampler
    let recipe: TrainingRecipe
    let index: TrainingData
    let rank: Int
    let world: Int
    /// Steps applied before this generation's first step.
    let startStep: Int
    let collectives: CollectiveThread
    let generation: UInt64
    let runID: UInt64
    let control: ControlChannel
    let dataOrderLog: DataOrderLog?
    let workerID: String
    /// Evaluates this rank's part of the validation set after the recipe's validation steps.
    let validator: Validator?
    /// With --timeline: the spans of each step, sent after it.
    let timeline: TimelineRecorder?
    let logger: Logger
    /// What the control plane says between steps: whether the generation was interrupted, and
    /// whether a stop was requested.
    let check: () -> (interrupted: Bool, stopRequested: Bool)

    /// Steps a non-finite loss may skip in a row before the run stops.
    static let maximumNonFiniteRun = 3

    /// How the loop ended.
    enum Ending: Equatable {
        /// The last step of the run, or an agreed stop, after `steps` steps in total.
        case finished(steps: Int, cursor: SamplerCursor)
        /// The generation ended under this rank; the replica holds the last step it applied.
        case ended(WorkerProtocol.GenerationEnd)
    }

    /// Runs until the last step, an agreed stop or an interruption.
    func run() throws -> Ending {
        let remaining = max(recipe.totalSteps - startStep, 0)
        let start = sampler.cursor(afterSteps: startStep)
        let plan = TrainingPlan(sampler: sampler, rank: rank, worldSize: world, start: start, stepCount: remaining)
        let logger = self.logger
        // With shard windows a loader streams this rank's samples of each window from its shards.
        let streamed: WindowedShardReader? = if case let .shards(set) = index, sampler.windows != nil {
            WindowedShardReader(shards: set, plan: plan)
        } else {
            nil
        }
        defer { streamed?.stop() }
        let prefetcher = Prefetcher(source: streamed.map { $0 as any SampleSource } ?? index, transform: ImageTransform(size: replica.model.config.imageSize, mode: .training),
                                    plan: plan, threads: 1, depth: 2,
                                    onFailure: { logger.warning("\($0.path): \($0)") })
        defer { prefetcher.stop() }
        let reducer = RingReducer(collectives: collectives, generation: generation)
        replica.bucketElements = (recipe.bucketMiB ?? 16) << 18
        replica.exactSlots = recipe.exactReduction == true
            ? TrainingReplica.ExactSlots(globalBatch: sampler.globalBatch,
                                         firstSlot: Sampler.sliceRange(rank: rank, worldSize: world, globalBatch: sampler.globalBatch).lowerBound)
            : nil
        var steps = startStep
        var nonFiniteRun = 0
        var emptyRun = 0
        for _ in 0..<remaining {
            let control = check()
            if control.interrupted { return .ended(.interrupted) }
            let t0 = ContinuousClock.now
            guard let batch = prefetcher.next() else { break }
            let t1 = ContinuousClock.now
            // Logged before the all-reduce: a step that completes anywhere included these samples,
            // even if this rank dies before it sees the result.
            if let dataOrderLog {
                do {
                    try dataOrderLog.record(workerID: workerID, run: runID, generation: generation, rank: rank, worldSize: world,
                                            step: steps + 1, epoch: batch.cursor.epoch, samples: batch.sampleIndices)
                } catch {
                    logger.warning("cannot append to the data-order log \(dataOrderLog.path): \(error)")
                }
            }
            let outcome: StepOutcome
            do {
                outcome = try batch.images.withUnsafeBufferPointer { pixels in
                    // An empty slice (every sample failed) still joins the all-reduce.
                    try withImages(pixels) { try replica.step(images: $0, count: batch.count, reducer: reducer, stopRequested: control.stopRequested) }
                }
            } catch let error as RingError {
                if case .bufferStillInUse = error { replica.abandonReductionBuffer() }
                return .ended(.ringFailed(step: steps + 1, reason: "\(error)", peer: error.peerRank))
            }
            let t2 = ContinuousClock.now
            if let timeline { record(on: timeline, data: t0..<t1, step: t1..<t2, reducer: reducer) }
            steps += 1
            state.applied(step: steps)
            emptyRun = outcome.samples == 0 ? emptyRun + 1 : 0
            if emptyRun >= Self.maximumNonFiniteRun {
                return .ended(.runCannotContinue(reason: "no image of steps \(steps - emptyRun + 1)-\(steps) could be read on any rank: the data is unreadable (the workers' warnings name the files)"))
            }
            nonFiniteRun = outcome.applied || emptyRun > 0 ? 0 : nonFiniteRun + 1
            if emptyRun > 0 {
                logger.warning("step \(steps) skipped: none of its images could be read on any rank")
            } else if !outcome.applied {
                logger.warning("step \(steps) skipped: non-finite loss or gradient on some rank")
            }
            if nonFiniteRun >= Self.maximumNonFiniteRun {
                return .ended(.runCannotContinue(reason: "\(nonFiniteRun) steps in a row had a non-finite loss or gradient (last: step \(steps)); lower --lr or check the data"))
            }
            self.control.setApplied(step: UInt64(steps))
            report(outcome, step: steps, epoch: batch.cursor.epoch, goodSamples: batch.count,
                   data: (t1 - t0).inSeconds, total: (t2 - t1).inSeconds, allReduce: reducer.lastWait.inSeconds,
                   hidden: max(reducer.lastCollectiveTime.inSeconds - reducer.lastWait.inSeconds, 0))
            if rank == 0 && recipe.checkpoints(afterStep: steps) && !outcome.stopRequested {
                let upload = ContinuousClock.now
                StateTransfer.upload(replica, layout: replica.model.layout, step: steps,
                                     epoch: sampler.cursor(afterSteps: steps).epoch, control: self.control)
                timeline?.add("checkpoint upload", upload..<ContinuousClock.now)
            }
            if outcome.stopRequested {
                timeline?.flush(rank: rank, step: steps, control: self.control)
                break
            }
            if recipe.validates(afterStep: steps) && !validate(step: steps) { return .ended(.interrupted) }
            timeline?.flush(rank: rank, step: steps, control: self.control)
        }
        return .finished(steps: steps, cursor: sampler.cursor(afterSteps: steps))
    }

    /// Evaluates this rank's blocks of the validation set with the parameters of `step` and
    /// sends the report; false when the generation was interrupted meanwhile.
    func validate(step: Int) -> Bool {
        guard let validator, let plan = recipe.validation else { return true }
        let blocks = plan.blocks(rank: rank, worldSize: world)
        logger.info("validating step \(step): blocks \(blocks.lowerBound)..<\(blocks.upperBound) of \(plan.blockCount)")
        let started = ContinuousClock.now
        let report = validator.evaluate(parameters: replica.parameters, step: step, rank: rank, worldSize: world,
                                        interrupted: { check().interrupted })
        timeline?.add("validation", started..<ContinuousClock.now)
        guard let report else { return false }
        control.send(.validationReport(report))
        return true
    }

    /// A step's spans: the data wait, then forward and backward up to the all-reduce wait, the
    /// wait, the optimizer after it; each collective on the collective thread's track.
    private func record(on timeline: TimelineRecorder, data: Range<ContinuousClock.Instant>,
                        step: Range<ContinuousClock.Instant>, reducer: RingReducer) {
        timeline.add("data wait", data)
        if let wait = reducer.lastWaitSpan, step.contains(wait.lowerBound), wait.upperBound <= step.upperBound {
            timeline.add("forward/backward", step.lowerBound..<wait.lowerBound)
            timeline.add("all-reduce wait", wait)
            timeline.add("optimizer", wait.upperBound..<step.upperBound)
        } else {
            timeline.add("step", step)
        }
        for (index, span) in reducer.lastCollectiveSpans.enumerated() {
            timeline.add("all-reduce \(index + 1)/\(reducer.lastCollectiveSpans.count)", span, on: .collectives)
        }
    }

    private func withImages<R>(_ pixels: UnsafeBufferPointer<Float>, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        if let base = pixels.baseAddress { return try body(base) }
        var placeholder: Float = 0
        return try body(&placeholder)
    }

    private func report(_ outcome: StepOutcome, step: Int, epoch: Int, goodSamples: Int,
                        data: Double, total: Double, allReduce: Double, hidden: Double) {
        let checksum = recipe.comparesChecksum(afterStep: step) || outcome.stopRequested ? parameterChecksum(replica.parameters) : 0
        let terms = [LossTerm(name: "loss", value: outcome.loss), LossTerm(name: "recon", value: outcome.recon),
                     LossTerm(name: "latent", value: outcome.latent), LossTerm(name: "sparsity", value: outcome.sparsity),
                     LossTerm(name: "lr", value: Double(outcome.learningRate)),
                     LossTerm(name: "applied", value: outcome.applied ? 1 : 0)]
        let seconds = data + total
        control.send(.stepReport(StepReport(
            rank: UInt32(rank), epoch: UInt64(epoch), step: UInt64(step), lossTerms: terms, goodSamples: UInt32(goodSamples),
            imagesPerSecond: seconds > 0 ? Double(goodSamples) / seconds : 0,
            timings: StepTimings(dataSeconds: data, computeSeconds: max(total - allReduce, 0), allReduceSeconds: allReduce,
                                 hiddenAllReduceSeconds: hidden),
            parameterChecksum: checksum)))
    }
}
