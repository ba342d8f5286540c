import Foundation

/// The training settings sent to workers as the `Assignment`'s JSON. The keys are the contract
/// with `Worker.TrainingRecipe`, which decodes the same object (Coordinator never imports Worker).
public struct TrainingRecipe: Codable, Sendable, Equatable {
    public var learningRate: Double
    public var optimizer: String
    public var warmupSteps: Int
    public var schedule: String
    public var totalSteps: Int
    public var microBatch: Int
    public var checksumEvery: Int
    /// Per-sample gradient slots reduced exactly (see --exact-reduction).
    public var exactReduction: Bool

    public init(settings: CoordinatorSettings, totalSteps: Int) {
        learningRate = settings.learningRate
        optimizer = settings.optimizer
        warmupSteps = settings.warmupSteps
        schedule = settings.schedule
        self.totalSteps = totalSteps
        microBatch = settings.microBatch
        checksumEvery = settings.checksumEvery
        exactReduction = settings.exactReduction
    }

    /// The reason of the `Shutdown` that asks workers to stop at the next step boundary; they
    /// recognise it by this text (Worker.TrainingRecipe has the same) and keep serving the upload.
    public static let stopRequestReason = "stop at the next step boundary"

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Whether workers send a parameter checksum with the report of step `step` (from 1).
    public func comparesChecksum(afterStep step: Int) -> Bool {
        step % checksumEvery == 0 || step >= totalSteps
    }
}
