import Logging

/// Entry point of `scvae-coordinator`: runs a whole training job with these settings.
public func runCoordinator(_ settings: CoordinatorSettings, logger: Logger) async throws {
    let data = settings.dataPath ?? "built-in sample data"
    let length = settings.steps.map { "\($0) steps" } ?? "\(settings.epochs ?? 0) epochs"
    logger.info("plan: config \(settings.config), \(settings.workers) workers, global batch \(settings.globalBatch), \(length), data: \(data)")
    logger.notice("distributed training is not implemented yet (issue 6); nothing was trained.")
}
