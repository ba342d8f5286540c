/// The weight of the latent term MSE(h, D z) in the loss, as a person gives it: "auto" or a number.
///
/// `auto` is the authors' default ("constant" attention): every squared latent error weighted by
/// 1 / (H * W * C) for the latent grid H x W and C latent channels, on top of the mean.
public enum LatentWeightSetting: Sendable, Hashable, Codable, LosslessStringConvertible {
    case auto
    case value(Float)

    /// Parses "auto" or a finite decimal >= 0; nil for anything else (`parse` says why).
    public init?(_ text: String) {
        guard let setting = try? Self.parse(text) else { return nil }
        self = setting
    }

    /// Parses "auto" or a finite decimal >= 0.
    public static func parse(_ text: String) throws(LossSettingError) -> LatentWeightSetting {
        if text.lowercased() == "auto" { return .auto }
        guard let number = Float(text) else { throw .latentWeightNotANumber(text) }
        guard number.isFinite, number >= 0 else { throw .latentWeightOutOfRange(number) }
        return .value(number)
    }

    /// "auto", or the number in Swift's shortest round-trip form ("0.25", "1e-05").
    public var description: String {
        switch self {
        case .auto: return "auto"
        case .value(let number): return "\(number)"
        }
    }

    /// The weight for this configuration: 1 / (latentSize^2 * latentChannels) for `auto`.
    public func resolved(for config: ModelConfig) -> Float {
        switch self {
        case .auto: return 1 / Float(config.latentSize * config.latentSize * config.latentChannels)
        case .value(let number): return number
        }
    }

    public init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Self.parse(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A beta or latent weight that the loss cannot use; the description is a sentence for a person.
public enum LossSettingError: Error, Equatable, CustomStringConvertible {
    /// beta must be finite and > 0 (theta = beta / c is the soft threshold).
    case betaOutOfRange(Float)
    /// The latent weight text is neither "auto" nor a number.
    case latentWeightNotANumber(String)
    /// The latent weight must be finite and >= 0.
    case latentWeightOutOfRange(Float)

    public var description: String {
        switch self {
        case .betaOutOfRange(let beta):
            return "beta must be a finite number greater than 0 (got \(beta))."
        case .latentWeightNotANumber(let text):
            return "latent weight must be 'auto' or a number (got '\(text)')."
        case .latentWeightOutOfRange(let weight):
            return "latent weight must be a finite number >= 0 or 'auto' (got \(weight))."
        }
    }
}

extension ModelConfig {
    /// Checks a beta for the soft threshold: finite and > 0.
    public static func validate(beta: Float) throws(LossSettingError) {
        guard beta.isFinite, beta > 0 else { throw .betaOutOfRange(beta) }
    }

    /// This configuration with another beta and/or latent weight (nil keeps the current one);
    /// `auto` resolves against this configuration's latent grid.
    public func applying(beta: Float? = nil, latentWeight: LatentWeightSetting? = nil) throws(LossSettingError) -> ModelConfig {
        var config = self
        if let beta {
            try Self.validate(beta: beta)
            config.beta = beta
        }
        if let latentWeight {
            let weight = latentWeight.resolved(for: self)
            guard weight.isFinite, weight >= 0 else { throw .latentWeightOutOfRange(weight) }
            config.latentWeight = weight
        }
        return config
    }

    /// This configuration with the loss settings a weights file was trained with: the `beta` and
    /// `latent_weight` entries of its metadata, which `scvae-coordinator` writes (beta sets
    /// LISTA's threshold, so the codes the weights were trained to give). Files without them,
    /// or with values that cannot be used, leave the configuration as it is.
    public func applying(weightsMetadata metadata: [String: String]) -> ModelConfig {
        let beta = metadata["beta"].flatMap(Float.init)
        let weight = metadata["latent_weight"].flatMap { try? LatentWeightSetting.parse($0) }
        return (try? applying(beta: beta, latentWeight: weight)) ?? self
    }
}
