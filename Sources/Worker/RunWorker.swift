import Foundation
import Logging
import Model

/// Entry point of `scvae-worker`: joins the coordinator and trains until told to stop. Returns
/// the process exit code (the coordinator's, or non-zero on any failure, which is logged).
public func runWorker(_ settings: WorkerSettings, logger: Logger) async -> Int32 {
    BLAS.setThreads(settings.threads)
    logger.info("worker with \(settings.threads) BLAS thread(s) for coordinator \(settings.coordinator)")
    // The session blocks (zmq, BLAS): it runs on a thread of its own, not on the cooperative pool.
    return await withCheckedContinuation { continuation in
        let thread = Thread {
            let code: Int32
            do {
                code = try WorkerSession(settings: settings, logger: logger).run()
            } catch {
                logger.error("\(error)")
                code = 1
            }
            continuation.resume(returning: code)
        }
        thread.name = "scvae-worker"
        thread.stackSize = 16 << 20
        thread.start()
    }
}
