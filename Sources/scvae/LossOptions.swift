import ArgumentParser
import Model

/// --beta and --latent-weight: the loss settings of the tools that run the model's maths.
struct LossOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("LISTA threshold parameter (theta = beta / c); a finite number > 0. Default: the weights' own (the beta in their metadata, which scvae-coordinator writes), else 1.", valueName: "beta"))
    var beta: Float?

    @Option(name: .customLong("latent-weight"), parsing: .unconditional,
            help: ArgumentHelp("Weight of MSE(h, D z) in the loss: a finite number >= 0, or 'auto' for 1 / (H * W * C) of the latent grid (the authors' default). Default: the weights' own (their metadata's latent_weight), else 1.", valueName: "x|auto"))
    var latentWeight: String?

    func validate() throws {
        do throws(LossSettingError) {
            if let beta { try ModelConfig.validate(beta: beta) }
            if let latentWeight { _ = try LatentWeightSetting.parse(latentWeight) }
        } catch {
            throw ValidationError("--\(error.isAboutBeta ? "beta" : "latent-weight"): \(error.description)")
        }
    }

    /// The configuration with these settings applied (validate() has accepted them).
    func apply(to config: ModelConfig) throws -> ModelConfig {
        let setting = try latentWeight.map { text throws(LossSettingError) in try LatentWeightSetting.parse(text) }
        return try config.applying(beta: beta, latentWeight: setting)
    }
}

private extension LossSettingError {
    var isAboutBeta: Bool {
        if case .betaOutOfRange = self { return true }
        return false
    }
}
