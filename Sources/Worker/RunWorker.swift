import Logging
import Model

/// Entry point of `scvae-worker`: joins the coordinator and trains until told to stop.
public func runWorker(_ settings: WorkerSettings, logger: Logger) async throws {
    BLAS.setThreads(settings.threads)
    logger.info("worker with \(settings.threads) BLAS thread(s) for coordinator \(settings.coordinator)")
    logger.notice("joining a coordinator is not implemented yet (issue 6); exiting.")
}
