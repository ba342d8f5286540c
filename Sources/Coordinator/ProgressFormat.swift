import TensorFiles
import Foundation

/// How a completed step is shown: a progress line for people, a JSON line for programs.
public enum ProgressFormat {
    /// `step 3/10 epoch 0 | loss 0.2345 (recon 0.2011 latent 0.0334) | sparsity 0.412 | 52.1 img/s |
    /// data 0.004 s compute 0.250 s all-reduce 0.012 s over shm | ETA 0:05` (the ring's transport
    /// when given).
    public static func line(_ s: RunProgress.StepSummary, totalSteps: Int, etaSeconds: Double?, ringTransport: String? = nil) -> String {
        var text = "step \(s.step)/\(totalSteps) epoch \(s.epoch) | loss \(fixed(s.loss, 4)) (recon \(fixed(s.recon, 4)) latent \(fixed(s.latent, 4)))"
        text += " | sparsity \(fixed(s.sparsity, 3)) | \(fixed(s.imagesPerSecond, 1)) img/s"
        text += " | data \(fixed(s.dataSeconds, 3)) s compute \(fixed(s.computeSeconds, 3)) s all-reduce \(fixed(s.allReduceSeconds, 3)) s"
        if s.hiddenAllReduceSeconds > 0 { text += " (+\(fixed(s.hiddenAllReduceSeconds, 3)) s hidden)" }
        if let ringTransport { text += " over \(ringTransport)" }
        if let etaSeconds { text += " | ETA \(clock(etaSeconds))" }
        if !s.applied { text += " | SKIPPED (non-finite)" }
        return text
    }

    /// `validation after step 500/2000 | loss 0.0123 (recon 0.0101 latent 0.0022) | PSNR 24.31 dB
    /// SSIM 0.8123 | sparsity 0.912 | 256 images in 0.8 s | best (loss)`.
    static func validationLine(_ r: ValidationResult, totalSteps: Int, isBest: Bool, metric: BestMetric) -> String {
        var text = "validation after step \(r.step)/\(totalSteps) | loss \(fixed(r.loss, 4)) (recon \(fixed(r.recon, 4)) latent \(fixed(r.latent, 4)))"
        text += " | PSNR \(fixed(r.psnr, 2)) dB SSIM \(fixed(r.ssim, 4)) | sparsity \(fixed(r.sparsity, 3))"
        text += " | \(r.images) images in \(fixed(r.seconds, 1)) s"
        if r.skipped > 0 { text += " (\(r.skipped) unreadable)" }
        if isBest { text += " | best (\(metric.rawValue))" }
        return text
    }

    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// H:MM:SS, or M:SS under an hour.
    public static func clock(_ seconds: Double) -> String {
        let total = Int(max(seconds, 0).rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }
}

/// One line of the --metrics file: a completed step. At least step, epoch, loss and images_per_s;
/// NaN and infinity are written as null (JSON has neither).
struct StepMetrics: Encodable, Equatable {
    var step: Int
    var epoch: Int
    var loss: Double?
    var recon: Double?
    var latent: Double?
    var sparsity: Double?
    var lr: Double?
    var images_per_s: Double?
    var samples: Int
    var applied: Bool
    var data_s: Double?
    var compute_s: Double?
    var allreduce_s: Double?
    var allreduce_hidden_s: Double?
    var step_s: Double?
    var elapsed_s: Double?
    /// "tcp" or "shm".
    var ring_transport: String

    init(_ s: RunProgress.StepSummary, elapsedSeconds: Double, ringTransport: String) {
        let finite = JSONLinesFile.finite
        step = s.step
        epoch = s.epoch
        loss = finite(s.loss)
        recon = finite(s.recon)
        latent = finite(s.latent)
        sparsity = finite(s.sparsity)
        lr = finite(s.learningRate)
        images_per_s = finite(s.imagesPerSecond)
        samples = s.samples
        applied = s.applied
        data_s = finite(s.dataSeconds)
        compute_s = finite(s.computeSeconds)
        allreduce_s = finite(s.allReduceSeconds)
        allreduce_hidden_s = finite(s.hiddenAllReduceSeconds)
        step_s = finite(s.stepSeconds)
        elapsed_s = finite(elapsedSeconds)
        ring_transport = ringTransport
    }

    // Written by hand so that a missing number is `null`, not a missing key.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(loss, forKey: .loss)
        try c.encode(recon, forKey: .recon)
        try c.encode(latent, forKey: .latent)
        try c.encode(sparsity, forKey: .sparsity)
        try c.encode(lr, forKey: .lr)
        try c.encode(images_per_s, forKey: .images_per_s)
        try c.encode(samples, forKey: .samples)
        try c.encode(applied, forKey: .applied)
        try c.encode(data_s, forKey: .data_s)
        try c.encode(compute_s, forKey: .compute_s)
        try c.encode(allreduce_s, forKey: .allreduce_s)
        try c.encode(allreduce_hidden_s, forKey: .allreduce_hidden_s)
        try c.encode(step_s, forKey: .step_s)
        try c.encode(elapsed_s, forKey: .elapsed_s)
        try c.encode(ring_transport, forKey: .ring_transport)
    }

    private enum CodingKeys: String, CodingKey {
        case step, epoch, loss, recon, latent, sparsity, lr, images_per_s, samples, applied, data_s, compute_s,
             allreduce_s, allreduce_hidden_s, step_s, elapsed_s, ring_transport
    }
}

extension StepMetrics {
    /// The figures of this step as TensorBoard scalars, named by group (train/, time/,
    /// throughput/), with the same values as the JSON line; a figure the step does not have is
    /// left out.
    var tensorBoardScalars: [TensorBoardEvents.Scalar] {
        let figures: [(String, Double?)] = [
            ("train/loss", loss), ("train/recon", recon), ("train/latent", latent), ("train/sparsity", sparsity),
            ("train/lr", lr), ("train/epoch", Double(epoch)), ("throughput/images_per_s", images_per_s),
            ("time/step_s", step_s), ("time/data_s", data_s), ("time/compute_s", compute_s),
            ("time/allreduce_s", allreduce_s), ("time/allreduce_hidden_s", allreduce_hidden_s),
        ]
        return figures.compactMap { tag, value in value.map { TensorBoardEvents.Scalar(tag, Float($0)) } }
    }
}

/// A line of the --metrics file for a completed validation: `"kind": "validation"` tells it from
/// the step lines (which have no kind).
struct ValidationMetrics: Encodable, Equatable {
    var kind = "validation"
    var step: Int
    var images: Int
    var skipped: Int
    var loss: Double?
    var recon: Double?
    var latent: Double?
    var psnr: Double?
    var ssim: Double?
    var sparsity: Double?
    var seconds: Double?
    var best: Bool

    init(_ r: ValidationResult, isBest: Bool) {
        let finite = JSONLinesFile.finite
        step = r.step
        images = r.images
        skipped = r.skipped
        loss = finite(r.loss)
        recon = finite(r.recon)
        latent = finite(r.latent)
        psnr = finite(r.psnr)
        ssim = finite(r.ssim)
        sparsity = finite(r.sparsity)
        seconds = finite(r.seconds)
        best = isBest
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(step, forKey: .step)
        try c.encode(images, forKey: .images)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(loss, forKey: .loss)
        try c.encode(recon, forKey: .recon)
        try c.encode(latent, forKey: .latent)
        try c.encode(psnr, forKey: .psnr)
        try c.encode(ssim, forKey: .ssim)
        try c.encode(sparsity, forKey: .sparsity)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(best, forKey: .best)
    }

    private enum CodingKeys: String, CodingKey {
        case kind, step, images, skipped, loss, recon, latent, psnr, ssim, sparsity, seconds, best
    }

    /// The figures as TensorBoard scalars under validation/.
    var tensorBoardScalars: [TensorBoardEvents.Scalar] {
        let figures: [(String, Double?)] = [
            ("validation/loss", loss), ("validation/recon", recon), ("validation/latent", latent),
            ("validation/psnr", psnr), ("validation/ssim", ssim), ("validation/sparsity", sparsity),
        ]
        return figures.compactMap { tag, value in value.map { TensorBoardEvents.Scalar(tag, Float($0)) } }
    }
}
