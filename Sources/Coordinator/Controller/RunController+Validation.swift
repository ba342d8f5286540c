import Checkpoints
import Foundation
import Logging
import Wire

/// Validation reports, their figures, and `DIR/best/`.
extension RunController {
    mutating func receiveValidation(_ report: ValidationReport, rank: Int, from workerID: String) {
        guard var tracker = validation else {
            countDrop("unexpected validation")
            return
        }
        let outcome = tracker.add(report, rank: rank, worldSize: progress.worldSize)
        validation = tracker
        switch outcome {
        case .incomplete:
            break
        case let .rejected(reason):
            countDrop("bad validation report")
            warnLimited("bad validation report", now: lastEventAt ?? 0, "dropped a validation report of step \(report.step) from \(workerID): \(reason)")
        case let .complete(result, isBest):
            validated(result, isBest: isBest)
        }
    }

    private mutating func validated(_ result: ValidationResult, isBest: Bool) {
        log(.info, ProgressFormat.validationLine(result, totalSteps: plan.totalSteps, isBest: isBest, metric: plan.settings.bestMetric))
        if result.skipped > 0 {
            log(.warning, "validation after step \(result.step): \(result.skipped) image(s) of the set could not be read and are left out of its figures (the workers' warnings name them)")
        }
        emit(.validation(result, isBest: isBest))
        emit(.record(.validation(step: result.step, images: result.images, skipped: result.skipped, loss: result.loss,
                                 psnr: result.psnr, ssim: result.ssim, best: isBest)))
        defer { if validatedCheckpoint?.state.step ?? .max <= result.step { validatedCheckpoint = nil } }
        guard isBest else { return }
        let summary = BestSummary(result, metric: plan.settings.bestMetric, config: plan.settings.config)
        if let checkpoint = validatedCheckpoint, checkpoint.state.step == result.step {
            emit(.write(.best(checkpoint, summary: summary)))
        } else if result.step == plan.totalSteps {
            // The final state is fetched after this: DIR/best/ is written from it.
            finalIsBest = summary
        } else {
            log(.warning, "the validation after step \(result.step) is the best so far, but no checkpoint of that step was taken (its state transfer failed); \(plan.settings.outputDirectory)/best is not updated")
        }
    }

    /// Keeps the checkpoint of a validated step until its validation completes.
    mutating func keepForValidation(_ checkpoint: Checkpoint) {
        guard plan.recipe.validates(afterStep: checkpoint.state.step) else { return }
        validatedCheckpoint = checkpoint
    }
}

/// `DIR/best/summary.json`: which step `best/` holds and its validation figures.
struct BestSummary: Codable, Equatable, Sendable {
    var step: Int
    var metric: BestMetric
    var config: String
    var images: Int
    var loss: Double?
    var recon: Double?
    var latent: Double?
    var psnr: Double?
    var ssim: Double?
    var sparsity: Double?

    init(_ result: ValidationResult, metric: BestMetric, config: String) {
        step = result.step
        self.metric = metric
        self.config = config
        images = result.images
        loss = result.loss
        recon = result.recon
        latent = result.latent
        psnr = result.psnr
        ssim = result.ssim
        sparsity = result.sparsity
    }

    /// The figure `metric` ranks by.
    var value: Double? {
        switch metric {
        case .loss: loss
        case .psnr: psnr
        }
    }

    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8)) + [0x0A]
    }

    /// The summary of the best checkpoint in `directory`, if it has one that reads.
    static func read(directory: String) -> BestSummary? {
        let path = (directory as NSString).appendingPathComponent("best/summary.json")
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(BestSummary.self, from: data)
    }

    var best: BestValidation? {
        value.map { BestValidation(step: step, metric: metric, value: $0) }
    }
}
