/// The hyperparameters that fix an SC-VAE's architecture (docs/model.md, "Configurations").
///
/// Notation: ch = base channels, chMult = channel multiplier per level, resBlocks = ResNet blocks
/// per encoder level (the decoder has one more), C = latent channels, K = dictionary atoms,
/// T = unrolled ISTA iterations.
public struct ModelConfig: Sendable, Equatable, Hashable, Codable {
    public var name: String
    public var imageSize: Int
    public var ch: Int
    public var chMult: [Int]
    public var resBlocks: Int
    public var attnResolutions: [Int]
    public var latentChannels: Int   // C
    public var atoms: Int            // K
    public var istaIterations: Int   // T
    /// Fixed LISTA hyperparameter: theta = beta / c. `applying(beta:latentWeight:)` validates a new one.
    public var beta: Float = 1
    /// Weight of MSE(h, D z) in the loss (`LatentWeightSetting` resolves "auto" to 1 / (H * W * C)).
    public var latentWeight: Float = 1
    /// GroupNorm uses min(maxGroups, channels) groups.
    public var maxGroups: Int = 32
    public var groupNormEpsilon: Float = 1e-6
    /// m of the overcomplete 1-D DCT (n = sqrt(C)); docs/model.md: 23 for C = 256, 12 for C = 64.
    public var dctAtomsPerAxis: Int

    public init(name: String, imageSize: Int, ch: Int, chMult: [Int], resBlocks: Int,
                attnResolutions: [Int], latentChannels: Int, atoms: Int, istaIterations: Int,
                dctAtomsPerAxis: Int) {
        self.name = name
        self.imageSize = imageSize
        self.ch = ch
        self.chMult = chMult
        self.resBlocks = resBlocks
        self.attnResolutions = attnResolutions
        self.latentChannels = latentChannels
        self.atoms = atoms
        self.istaIterations = istaIterations
        self.dctAtomsPerAxis = dctAtomsPerAxis
    }

    public static let imagenetF16 = ModelConfig(
        name: "imagenet-f16", imageSize: 256, ch: 128, chMult: [1, 1, 2, 2, 4], resBlocks: 2,
        attnResolutions: [16], latentChannels: 256, atoms: 512, istaIterations: 16, dctAtomsPerAxis: 23)
    public static let imagenetF8 = ModelConfig(
        name: "imagenet-f8", imageSize: 256, ch: 128, chMult: [1, 2, 2, 4], resBlocks: 2,
        attnResolutions: [16], latentChannels: 256, atoms: 512, istaIterations: 16, dctAtomsPerAxis: 23)
    public static let small = ModelConfig(
        name: "small", imageSize: 64, ch: 64, chMult: [1, 2, 2], resBlocks: 1,
        attnResolutions: [16], latentChannels: 64, atoms: 128, istaIterations: 5, dctAtomsPerAxis: 12)
    public static let tiny = ModelConfig(
        name: "tiny", imageSize: 32, ch: 32, chMult: [1, 2, 2], resBlocks: 1,
        attnResolutions: [8], latentChannels: 64, atoms: 128, istaIterations: 5, dctAtomsPerAxis: 12)

    // The authors' stage-1 configurations, named after their configuration files (docs/model.md,
    // "The authors' stage-1 configurations"): 256 x 256 images, ch 128, two ResNet blocks per
    // level, attention at 16 x 16, C = 256, K = 512, DCT m = 23. The suffix is the latent grid;
    // ImageNet and FFHQ differ only in the ISTA iterations (num_soft_thresh).
    public static let im256SCVAE1x1 = authors("im256-scvae1x1", chMult: chMult1x1, istaIterations: 16)
    public static let im256SCVAE4x4 = authors("im256-scvae4x4", chMult: chMult4x4, istaIterations: 16)
    public static let im256SCVAE16x16 = authors("im256-scvae16x16", chMult: chMult16x16, istaIterations: 16)
    public static let im256SCVAE32x32 = authors("im256-scvae32x32", chMult: chMult32x32, istaIterations: 16)
    public static let ffhq256SCVAE1x1 = authors("ffhq256-scvae1x1", chMult: chMult1x1, istaIterations: 30)
    public static let ffhq256SCVAE4x4 = authors("ffhq256-scvae4x4", chMult: chMult4x4, istaIterations: 16)
    public static let ffhq256SCVAE16x16 = authors("ffhq256-scvae16x16", chMult: chMult16x16, istaIterations: 30)
    public static let ffhq256SCVAE32x32 = authors("ffhq256-scvae32x32", chMult: chMult32x32, istaIterations: 16)

    private static let chMult1x1 = [1, 1, 1, 2, 2, 2, 4, 4, 4]
    private static let chMult4x4 = [1, 1, 1, 2, 2, 4, 4]
    private static let chMult16x16 = [1, 1, 2, 2, 4]
    private static let chMult32x32 = [1, 2, 2, 4]

    private static func authors(_ name: String, chMult: [Int], istaIterations: Int) -> ModelConfig {
        ModelConfig(name: name, imageSize: 256, ch: 128, chMult: chMult, resBlocks: 2, attnResolutions: [16],
                    latentChannels: 256, atoms: 512, istaIterations: istaIterations, dctAtomsPerAxis: 23)
    }

    public static let all: [ModelConfig] = [
        .tiny, .small, .imagenetF8, .imagenetF16,
        .im256SCVAE1x1, .im256SCVAE4x4, .im256SCVAE16x16, .im256SCVAE32x32,
        .ffhq256SCVAE1x1, .ffhq256SCVAE4x4, .ffhq256SCVAE16x16, .ffhq256SCVAE32x32,
    ]

    /// The configuration with this name, or nil.
    public static func named(_ name: String) -> ModelConfig? {
        all.first { $0.name == name }
    }

    /// Number of resolution levels.
    public var levels: Int { chMult.count }
    /// Side of the latent grid (one latent vector per f x f patch, f = 2^(levels-1)).
    public var latentSize: Int { imageSize >> (levels - 1) }
    /// The encoder levels whose resolution carries attention blocks (the decoder mirrors them).
    public var attentionLevels: [Int] {
        (0..<levels).filter { attnResolutions.contains(imageSize >> $0) }
    }
    /// GroupNorm groups for a layer with this many channels.
    public func groups(for channels: Int) -> Int { min(maxGroups, channels) }
}
