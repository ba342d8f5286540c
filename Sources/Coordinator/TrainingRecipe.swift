import Wire

extension TrainingRecipe {
    /// The recipe of a run with these settings.
    public init(settings: CoordinatorSettings, totalSteps: Int, validation: ValidationPlan? = nil) {
        self.init(learningRate: settings.learningRate, optimizer: settings.optimizer, warmupSteps: settings.warmupSteps,
                  schedule: settings.schedule, totalSteps: totalSteps, microBatch: settings.microBatch,
                  checksumEvery: settings.checksumEvery, exactReduction: settings.exactReduction,
                  checkpointEvery: settings.checkpointEvery, bucketMiB: settings.bucketMiB)
        self.validation = validation
        timeline = settings.timelinePath == nil ? nil : true
    }
}
