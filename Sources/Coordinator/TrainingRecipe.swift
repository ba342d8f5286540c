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
        // Left out at their defaults, so that the recipe of a default run is what it always was.
        beta = settings.beta == 1 ? nil : settings.beta
        latentWeight = settings.latentWeight == .value(1) ? nil : settings.latentWeight
        shardWindow = settings.shardWindow == 0 ? nil : settings.shardWindow
    }
}
