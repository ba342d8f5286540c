import Data
import Foundation
import Logging
import Model
import Wire

/// The steps of one generation on one rank: batches from the prefetcher, the replica's step with
/// the ring as reducer, a report per step to the coordinator.
struct TrainingLoop {
    let replica: TrainingReplica
    let sampler: Sampler
    let recipe: TrainingRecipe
    let index: DatasetIndex
    let rank: Int
    let world: Int
    let start: SamplerCursor
    let collectives: CollectiveThread
    let generation: UInt64
    let control: ControlChannel
    let logger: Logger

    /// Steps a non-finite loss may skip in a row before the run stops.
    static let maximumNonFiniteRun = 3

    /// How the loop ended: steps applied since the start of training, and the next step's cursor.
    struct Ending {
        var steps: Int
        var cursor: SamplerCursor
    }

    /// Runs until the last step or an agreed stop.
    func run() throws -> Ending {
        let done = sampler.stepsBefore(start)
        let remaining = max(recipe.totalSteps - done, 0)
        let plan = TrainingPlan(sampler: sampler, rank: rank, worldSize: world, start: start, stepCount: remaining)
        let logger = self.logger
        let prefetcher = Prefetcher(source: index, transform: ImageTransform(size: replica.model.config.imageSize, mode: .training),
                                    plan: plan, threads: 1, depth: 2,
                                    onFailure: { logger.warning("\($0.path): \($0)") })
        defer { prefetcher.stop() }
        let reducer = RingReducer(collectives: collectives, generation: generation)
        if recipe.exactReduction == true {
            replica.exactSlots = TrainingReplica.ExactSlots(
                globalBatch: sampler.globalBatch,
                firstSlot: Sampler.sliceRange(rank: rank, worldSize: world, globalBatch: sampler.globalBatch).lowerBound)
        }
        var steps = done
        var stopAsked = false
        var nonFiniteRun = 0
        for _ in 0..<remaining {
            while let envelope = control.poll() {
                switch envelope.message {
                case let .shutdown(body) where body.reason == TrainingRecipe.stopRequestReason:
                    if !stopAsked { logger.notice("stop requested; stopping at the next step boundary") }
                    stopAsked = true
                case let .shutdown(body):
                    throw WorkerFailure.aborted(reason: "shut down during training: \(body.reason)")
                case let .abort(body):
                    throw WorkerFailure.aborted(reason: body.reason)
                default:
                    logger.debug("ignored \(envelope.message.kind) during training")
                }
            }
            let t0 = ContinuousClock.now
            guard let batch = prefetcher.next() else { break }
            let t1 = ContinuousClock.now
            let outcome: StepOutcome
            do {
                outcome = try batch.images.withUnsafeBufferPointer { pixels in
                    // An empty slice (every sample failed) still joins the all-reduce.
                    try withImages(pixels) { try replica.step(images: $0, count: batch.count, reducer: reducer, stopRequested: stopAsked) }
                }
            } catch let error as RingError {
                throw WorkerFailure.ring(step: steps + 1, error)
            }
            let t2 = ContinuousClock.now
            steps += 1
            nonFiniteRun = outcome.applied ? 0 : nonFiniteRun + 1
            if !outcome.applied { logger.warning("step \(steps) skipped: non-finite loss or gradient on some rank") }
            if nonFiniteRun >= Self.maximumNonFiniteRun { throw WorkerFailure.nonFinite(step: steps, count: nonFiniteRun) }
            control.setApplied(step: UInt64(steps))
            report(outcome, step: steps, epoch: batch.cursor.epoch, goodSamples: batch.count,
                   data: (t1 - t0).seconds, total: (t2 - t1).seconds, allReduce: reducer.lastWait.seconds)
            if outcome.stopRequested {
                return Ending(steps: steps, cursor: sampler.cursor(afterSteps: steps))
            }
        }
        return Ending(steps: steps, cursor: sampler.cursor(afterSteps: steps))
    }

    private func withImages<R>(_ pixels: UnsafeBufferPointer<Float>, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        if let base = pixels.baseAddress { return try body(base) }
        var placeholder: Float = 0
        return try body(&placeholder)
    }

    private func report(_ outcome: StepOutcome, step: Int, epoch: Int, goodSamples: Int,
                        data: Double, total: Double, allReduce: Double) {
        let checksum = recipe.comparesChecksum(afterStep: step) || outcome.stopRequested ? parameterChecksum(replica.parameters) : 0
        let terms = [LossTerm(name: "loss", value: outcome.loss), LossTerm(name: "recon", value: outcome.recon),
                     LossTerm(name: "latent", value: outcome.latent), LossTerm(name: "sparsity", value: outcome.sparsity),
                     LossTerm(name: "lr", value: Double(outcome.learningRate)),
                     LossTerm(name: "applied", value: outcome.applied ? 1 : 0)]
        let seconds = data + total
        control.send(.stepReport(StepReport(
            rank: UInt32(rank), epoch: UInt64(epoch), step: UInt64(step), lossTerms: terms, goodSamples: UInt32(goodSamples),
            imagesPerSecond: seconds > 0 ? Double(goodSamples) / seconds : 0,
            timings: StepTimings(dataSeconds: data, computeSeconds: max(total - allReduce, 0), allReduceSeconds: allReduce),
            parameterChecksum: checksum)))
    }
}
