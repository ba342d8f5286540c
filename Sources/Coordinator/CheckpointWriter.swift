import Data
import Foundation

/// Writes checkpoints on a thread of its own, so that fsyncing hundreds of megabytes never
/// stalls the coordinator's control loop (heartbeats, liveness). One checkpoint at a time: a
/// new one submitted while another is written waits; a third replaces the waiting one (the
/// newer state wins). Results are collected by the control loop with `takeResults`.
final class CheckpointWriter: @unchecked Sendable {
    enum Result {
        case written(step: Int, path: String, seconds: Double, bytes: Int)
        /// Written, but an older checkpoint could not be removed.
        case writtenWithoutPruning(step: Int, path: String, reason: String)
        case failed(step: Int, error: CheckpointError)
    }

    let store: CheckpointStore
    private let condition = NSCondition()
    private var waiting: Checkpoint?
    private var busy = false
    private var stopping = false
    private var results: [Result] = []

    init(store: CheckpointStore) {
        self.store = store
        let thread = Thread { [self] in serve() }
        thread.name = "scvae-checkpoints"
        thread.start()
    }

    /// Queues `checkpoint`; returns the step of a waiting checkpoint it replaced, if any.
    @discardableResult
    func submit(_ checkpoint: Checkpoint) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        let replaced = waiting?.state.step
        waiting = checkpoint
        condition.broadcast()
        return replaced
    }

    /// What finished since the last call.
    func takeResults() -> [Result] {
        condition.lock()
        defer { condition.unlock() }
        let taken = results
        results.removeAll()
        return taken
    }

    /// Waits until nothing is queued or being written, at most `timeout`; true if idle.
    func waitUntilIdle(timeout: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        while busy || waiting != nil {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    /// Ends the thread after the checkpoint being written (a waiting one is still written).
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while waiting == nil && !stopping { condition.wait() }
            guard let checkpoint = waiting else { condition.unlock(); return }
            waiting = nil
            busy = true
            condition.unlock()

            let started = ContinuousClock.now
            let result: Result
            do {
                let path = try store.write(checkpoint)
                let bytes = (checkpoint.model + checkpoint.optimizer).reduce(0) { $0 + $1.data.count }
                result = .written(step: checkpoint.state.step, path: path, seconds: (ContinuousClock.now - started).inSeconds, bytes: bytes)
            } catch .pruneFailed(let path, let reason) {
                result = .writtenWithoutPruning(step: checkpoint.state.step, path: path, reason: reason)
            } catch {
                result = .failed(step: checkpoint.state.step, error: error)
            }
            condition.lock()
            results.append(result)
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
