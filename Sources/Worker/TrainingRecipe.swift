import Model
import Wire

extension TrainingRecipe {
    /// The optimizer these settings describe (the recipe was validated when it was decoded).
    public var optimizerSettings: OptimizerSettings {
        let decay: LearningRateSchedule.Decay = schedule == "cosine" ? .cosine(totalSteps: totalSteps, finalRate: 0) : .constant
        return OptimizerSettings(kind: OptimizerKind(rawValue: optimizer) ?? .adam,
                                 schedule: LearningRateSchedule(peak: Float(learningRate), warmupSteps: warmupSteps, decay: decay))
    }
}
