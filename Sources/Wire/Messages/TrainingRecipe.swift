import Foundation

/// The training settings an `Assignment` carries as JSON (`Assignment.settingsJSON`).
///
/// The coordinator writes it (from its command line) and every worker decodes it: this one type
/// is the contract, in Wire because both sides speak Wire and never import each other. Unknown
/// keys are ignored, so a newer coordinator can add settings.
public struct TrainingRecipe: Codable, Sendable, Equatable {
    /// Peak learning rate after the warm-up.
    public var learningRate: Double
    /// "adam" or "sgd".
    public var optimizer: String
    public var warmupSteps: Int
    /// "constant" or "cosine" (to zero at `totalSteps`).
    public var schedule: String
    /// Steps of the whole run (the worker stops after the last one).
    public var totalSteps: Int
    /// Largest number of images one forward/backward takes; larger slices are accumulated.
    public var microBatch: Int
    /// Replicas compare parameter checksums every this many steps (and at the start and end).
    public var checksumEvery: Int
    /// Reduce per-sample gradient slots exactly (bit-identical across N, G times the traffic);
    /// absent or false: one summed buffer.
    public var exactReduction: Bool?
    /// Rank 0 streams its state to the coordinator after every this many steps (absent or 0:
    /// only at the end).
    public var checkpointEvery: Int?
    /// MiB of gradients per all-reduce bucket, started while backward goes on (absent: 16; 0:
    /// one all-reduce after backward).
    public var bucketMiB: Int?
    /// Validation on a held-out set (absent: none).
    public var validation: ValidationPlan?
    /// Set by the coordinator in one generation's assignment: the validation after this step is
    /// incomplete (a rank was lost during it), so a generation that starts from this step
    /// validates before its first step.
    public var validateAtStart: Int?
    /// Ranks send the spans of every step to the coordinator (`--timeline`); absent: no.
    public var timeline: Bool?
    /// LISTA's threshold scale: theta = beta / c (absent: 1).
    public var beta: Double?
    /// Weight of the latent term MSE(h, D z) in the loss (absent: 1).
    public var latentWeight: LatentWeight?
    /// Shards per shuffle window when training on shards (absent or 0: one permutation of the
    /// whole dataset).
    public var shardWindow: Int?

    public init(learningRate: Double, optimizer: String, warmupSteps: Int, schedule: String,
                totalSteps: Int, microBatch: Int, checksumEvery: Int, exactReduction: Bool? = nil,
                checkpointEvery: Int? = nil, bucketMiB: Int? = nil) {
        self.bucketMiB = bucketMiB
        self.exactReduction = exactReduction
        self.checkpointEvery = checkpointEvery
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.warmupSteps = warmupSteps
        self.schedule = schedule
        self.totalSteps = totalSteps
        self.microBatch = microBatch
        self.checksumEvery = checksumEvery
    }

    /// Why an assignment's settings cannot be used; names the field.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        /// The JSON does not decode as a recipe.
        case malformed(reason: String)
        /// A field has a value this worker does not understand.
        case invalid(field: String, value: String)

        public var description: String {
            switch self {
            case let .malformed(reason): "assignment settings are not a training recipe: \(reason)"
            case let .invalid(field, value): "assignment settings: \(field) = \(value) is not supported"
            }
        }
    }

    /// The optimizers a recipe may name (`--optimizer`); the first is the default.
    public enum OptimizerName: String, CaseIterable, Sendable {
        case adam, sgd
    }

    /// The learning-rate schedules after the warm-up a recipe may name (`--schedule`); the first is the default.
    public enum ScheduleName: String, CaseIterable, Sendable {
        case constant, cosine
    }

    /// The optimizers and schedules a recipe may name, as text.
    public static let optimizers = Set(OptimizerName.allCases.map(\.rawValue))
    public static let schedules = Set(ScheduleName.allCases.map(\.rawValue))

    public static func decode(_ json: String) throws(Problem) -> TrainingRecipe {
        let recipe: TrainingRecipe
        do {
            recipe = try JSONDecoder().decode(TrainingRecipe.self, from: Data(json.utf8))
        } catch {
            throw .malformed(reason: "\(error)")
        }
        guard optimizers.contains(recipe.optimizer) else { throw .invalid(field: "optimizer", value: recipe.optimizer) }
        guard schedules.contains(recipe.schedule) else { throw .invalid(field: "schedule", value: recipe.schedule) }
        guard recipe.learningRate > 0, recipe.learningRate.isFinite else { throw .invalid(field: "learningRate", value: "\(recipe.learningRate)") }
        guard recipe.totalSteps >= 1 else { throw .invalid(field: "totalSteps", value: "\(recipe.totalSteps)") }
        guard recipe.microBatch >= 1 else { throw .invalid(field: "microBatch", value: "\(recipe.microBatch)") }
        guard recipe.checksumEvery >= 1 else { throw .invalid(field: "checksumEvery", value: "\(recipe.checksumEvery)") }
        guard (recipe.checkpointEvery ?? 0) >= 0 else { throw .invalid(field: "checkpointEvery", value: "\(recipe.checkpointEvery ?? 0)") }
        guard (recipe.bucketMiB ?? 0) >= 0 && (recipe.bucketMiB ?? 0) <= 4096 else { throw .invalid(field: "bucketMiB", value: "\(recipe.bucketMiB ?? 0)") }
        guard recipe.warmupSteps >= 0 else { throw .invalid(field: "warmupSteps", value: "\(recipe.warmupSteps)") }
        if let beta = recipe.beta, !(beta > 0 && beta.isFinite) { throw .invalid(field: "beta", value: "\(beta)") }
        if let weight = recipe.latentWeight, let problem = weight.problem { throw .invalid(field: "latentWeight", value: problem) }
        if let window = recipe.shardWindow, window < 0 { throw .invalid(field: "shardWindow", value: "\(window)") }
        if let validation = recipe.validation, let problem = validation.problem {
            throw .invalid(field: "validation.\(problem.field)", value: problem.value)
        }
        return recipe
    }

    /// The recipe as the Assignment's JSON (keys sorted, so equal recipes give equal bytes).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Whether replicas exchange a parameter checksum after step `step` (counted from 1):
    /// every `checksumEvery` steps, at checkpoint steps (a checkpoint is checked against the
    /// replicas' agreed checksum) and at the end.
    public func comparesChecksum(afterStep step: Int) -> Bool {
        step % checksumEvery == 0 || step >= totalSteps || checkpoints(afterStep: step)
    }

    /// Whether rank 0 uploads its state for a checkpoint after step `step` (before the last):
    /// every `checkpointEvery` steps, and after every validation, so that the weights a
    /// validation finds best are on disk to become `DIR/best/`.
    public func checkpoints(afterStep step: Int) -> Bool {
        guard step < totalSteps else { return false }
        if validates(afterStep: step) { return true }
        guard let every = checkpointEvery, every > 0 else { return false }
        return step % every == 0
    }

    /// Whether the ranks validate after step `step`: every `validation.every` steps and after
    /// the last step.
    public func validates(afterStep step: Int) -> Bool {
        guard let validation, step >= 1 else { return false }
        return step % validation.every == 0 || step == totalSteps
    }
}

/// The weight of the latent term in the loss: a number, or `auto`, the SC-VAE authors' default
/// ("constant" attention): 1 / (H * W * C) for a latent grid of H x W positions of C channels, so
/// that the term is a sum over the latent grid rather than a mean; each worker resolves it for its
/// configuration. Written in JSON and on the command line as a decimal number or the string "auto".
public enum LatentWeight: Codable, Sendable, Equatable, CustomStringConvertible {
    case value(Double)
    case auto

    /// "auto" or a decimal number; nil for anything else (the range is `problem`'s).
    public init?(text: String) {
        if text == "auto" {
            self = .auto
        } else if let number = Double(text) {
            self = .value(number)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case let .value(weight): "\(weight)"
        case .auto: "auto"
        }
    }

    /// Why this weight cannot be used, or nil: a number must be finite and not negative.
    public var problem: String? {
        if case let .value(weight) = self, !(weight >= 0 && weight.isFinite) { return "\(weight)" }
        return nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            self = .value(number)
            return
        }
        let text = try container.decode(String.self)
        guard text == "auto" else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "latent weight must be a number or \"auto\", not \"\(text)\"")
        }
        self = .auto
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .value(weight): try container.encode(weight)
        case .auto: try container.encode("auto")
        }
    }
}

/// What validation evaluates and when (`TrainingRecipe.validation`).
///
/// The set's first `images` images are cut into blocks of `blockSize` consecutive images; each
/// block is evaluated in one forward pass, and rank r of N takes the contiguous blocks
/// `blocks(rank: r, worldSize: N)`. A block's images and its forward pass are the same whatever
/// N, and the coordinator adds the blocks in order, so the figures do not depend on N (up to the
/// BLAS rounding of different thread counts).
public struct ValidationPlan: Codable, Sendable, Equatable {
    /// The held-out set: a folder or shard directory, or nil for the built-in sample data's
    /// held-out part.
    public var dataPath: String?
    /// The coordinator's fingerprint of that set; a worker that finds another one refuses it.
    public var fingerprint: String
    /// Steps between validations.
    public var every: Int
    /// How many images of the set are evaluated (the first ones, in the set's order).
    public var images: Int
    /// Images per forward pass and per block.
    public var blockSize: Int
    /// The first this many images make the reconstruction grid rank 0 sends.
    public var gridImages: Int

    public init(dataPath: String?, fingerprint: String, every: Int, images: Int, blockSize: Int = 8, gridImages: Int = 16) {
        self.dataPath = dataPath
        self.fingerprint = fingerprint
        self.every = every
        self.images = images
        self.blockSize = blockSize
        self.gridImages = gridImages
    }

    public var blockCount: Int { (images + blockSize - 1) / blockSize }

    /// The blocks rank `rank` of `worldSize` evaluates (contiguous; some ranks may get none).
    public func blocks(rank: Int, worldSize: Int) -> Range<Int> {
        let count = blockCount
        return (rank * count / worldSize)..<((rank + 1) * count / worldSize)
    }

    /// The images of block `block`.
    public func images(ofBlock block: Int) -> Range<Int> {
        (block * blockSize)..<min((block + 1) * blockSize, images)
    }

    /// The first field that cannot be used, with its value.
    var problem: (field: String, value: String)? {
        if every < 1 { return ("every", "\(every)") }
        if images < 1 { return ("images", "\(images)") }
        if blockSize < 1 || blockSize > 4096 { return ("blockSize", "\(blockSize)") }
        if gridImages < 0 || gridImages > 256 { return ("gridImages", "\(gridImages)") }
        return nil
    }
}
