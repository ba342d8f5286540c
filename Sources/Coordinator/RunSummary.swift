import BuildInfo
import Foundation
import TensorFiles

/// `DIR/final/summary.json`: what the run did, for people and programs.
struct RunSummary: Encodable, Equatable {
    var config: String
    var beta: Double
    var latent_weight: String
    var workers: Int
    var global_batch: Int
    var steps: Int
    var planned_steps: Int
    var epoch: Int
    var seconds: Double?
    var weights: String
    var stopped_early: Bool
    var loss: Double?
    var sparsity: Double?
    var images_per_s: Double?
    /// The coordinator's package version and git commit (`BuildInfo`).
    var version: String
    var commit: String

    init(settings: CoordinatorSettings, outcome: (path: String, step: Int, epoch: Int), plannedSteps: Int, seconds: Double,
         last: RunProgress.StepSummary?) {
        config = settings.config
        beta = settings.beta
        latent_weight = settings.latentWeight.description
        workers = settings.workers
        global_batch = settings.globalBatch
        steps = outcome.step
        planned_steps = plannedSteps
        epoch = outcome.epoch
        self.seconds = JSONLinesFile.finite(seconds)
        weights = outcome.path
        stopped_early = outcome.step < plannedSteps
        loss = last.flatMap { JSONLinesFile.finite($0.loss) }
        sparsity = last.flatMap { JSONLinesFile.finite($0.sparsity) }
        images_per_s = last.flatMap { JSONLinesFile.finite($0.imagesPerSecond) }
        version = BuildInfo.version
        commit = BuildInfo.commit
    }

    // Written by hand so that a missing number is `null`, not a missing key.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(config, forKey: .config)
        try c.encode(beta, forKey: .beta)
        try c.encode(latent_weight, forKey: .latent_weight)
        try c.encode(workers, forKey: .workers)
        try c.encode(global_batch, forKey: .global_batch)
        try c.encode(steps, forKey: .steps)
        try c.encode(planned_steps, forKey: .planned_steps)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(weights, forKey: .weights)
        try c.encode(stopped_early, forKey: .stopped_early)
        try c.encode(loss, forKey: .loss)
        try c.encode(sparsity, forKey: .sparsity)
        try c.encode(images_per_s, forKey: .images_per_s)
        try c.encode(version, forKey: .version)
        try c.encode(commit, forKey: .commit)
    }

    private enum CodingKeys: String, CodingKey {
        case config, beta, latent_weight, workers, global_batch, steps, planned_steps, epoch, seconds, weights, stopped_early, loss, sparsity,
             images_per_s, version, commit
    }

    /// Writes the summary as one JSON object (atomically).
    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        do {
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: path, reason: "\(error)")
        }
    }
}
