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

    /// Whether rank 0 uploads its state for a checkpoint after step `step` (before the last).
    public func checkpoints(afterStep step: Int) -> Bool {
        guard let every = checkpointEvery, every > 0 else { return false }
        return step % every == 0 && step < totalSteps
    }
}
