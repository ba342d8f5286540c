import Foundation
import Logging
import Model

/// Entry point of `scvae-worker`: joins the coordinator and trains until told to stop. Returns
/// the process exit code (the coordinator's, or non-zero on any failure, which is logged).
public func runWorker(_ settings: WorkerSettings, logger: Logger) async -> Int32 {
    BLAS.setThreads(settings.threads)
    if let parent = ProcessInfo.processInfo.environment["SCVAE_LOCAL_PARENT"].flatMap(Int32.init) {
        endWithParent(parent, logger: logger)
    }
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

/// A `--local` worker belongs to the coordinator that started it, a `--nproc-per-node` rank to
/// its supervisor: when that process is gone (its parent changes), this one ends too, rather than
/// outliving it and meeting its successor's own workers under the same ids. Checked once a second on a thread of its own.
private func endWithParent(_ parent: Int32, logger: Logger) {
    let thread = Thread {
        while getppid() == parent { Thread.sleep(forTimeInterval: 1) }
        logger.error("the process that started this worker (pid \(parent)) is gone; exiting")
        exit(1)
    }
    thread.name = "scvae-parent-watch"
    thread.start()
}
