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

    /// One JSON object (keys in a fixed order): at least step, epoch, loss, images_per_s; then
    /// `ring_transport` ("tcp" or "shm") when given.
    public static func metricsJSON(_ s: RunProgress.StepSummary, elapsedSeconds: Double, ringTransport: String? = nil) -> String {
        var fields: [(String, String)] = [
            ("step", "\(s.step)"), ("epoch", "\(s.epoch)"), ("loss", number(s.loss)), ("recon", number(s.recon)),
            ("latent", number(s.latent)), ("sparsity", number(s.sparsity)), ("lr", number(s.learningRate)),
            ("images_per_s", number(s.imagesPerSecond)), ("samples", "\(s.samples)"), ("applied", s.applied ? "true" : "false"),
            ("data_s", number(s.dataSeconds)), ("compute_s", number(s.computeSeconds)),
            ("allreduce_s", number(s.allReduceSeconds)), ("allreduce_hidden_s", number(s.hiddenAllReduceSeconds)), ("step_s", number(s.stepSeconds)), ("elapsed_s", number(elapsedSeconds)),
        ]
        if let ringTransport { fields.append(("ring_transport", "\"\(ringTransport)\"")) }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// JSON has no NaN or infinity: those are written as null.
    static func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// H:MM:SS, or M:SS under an hour.
    public static func clock(_ seconds: Double) -> String {
        let total = Int(max(seconds, 0).rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }
}
