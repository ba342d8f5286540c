import Checkpoints
import Foundation

/// Writes checkpoints and the final weights on a thread of its own, so that fsyncing hundreds of
/// megabytes never stalls the coordinator's control loop (heartbeats, liveness). One job at a
/// time: a new one submitted while another is written waits; a third replaces the waiting one
/// (the newer state wins). Results are collected by the control loop with `takeResults`.
final class CheckpointWriter: @unchecked Sendable {
    let store: CheckpointStore
    private let condition = NSCondition()
    private var waiting: WriterJob?
    /// A `DIR/best/` write waits apart, so a newer checkpoint never replaces it; a newer best does.
    private var waitingBest: WriterJob?
    private var busy = false
    private var stopping = false
    private var results: [WriterResult] = []

    init(store: CheckpointStore) {
        self.store = store
        let thread = Thread { [self] in serve() }
        thread.name = "scvae-checkpoints"
        thread.start()
    }

    /// Queues `job`; returns the step of a waiting checkpoint it replaced, if any. A waiting final
    /// state is never replaced by a checkpoint.
    @discardableResult
    func submit(_ job: WriterJob) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        if case .best = job {
            waitingBest = job
            condition.broadcast()
            return nil
        }
        if case .final = waiting, case .checkpoint = job { return nil }
        var replaced: Int?
        if case let .checkpoint(old) = waiting { replaced = old.state.step }
        waiting = job
        condition.broadcast()
        return replaced
    }

    /// What finished since the last call.
    func takeResults() -> [WriterResult] {
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
        while busy || waiting != nil || waitingBest != nil {
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
            while waiting == nil && waitingBest == nil && !stopping { condition.wait() }
            // A best state goes first: it was submitted before any final state that follows it.
            guard let job = waitingBest ?? waiting else { condition.unlock(); return }
            if waitingBest != nil { waitingBest = nil } else { waiting = nil }
            busy = true
            condition.unlock()

            let result = write(job)
            condition.lock()
            results.append(result)
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }

    private func write(_ job: WriterJob) -> WriterResult {
        switch job {
        case let .checkpoint(checkpoint):
            let step = checkpoint.state.step
            let started = ContinuousClock.now
            switch writeCheckpoint(checkpoint) {
            case let .success(path):
                let bytes = (checkpoint.model + checkpoint.optimizer).reduce(0) { $0 + $1.data.count }
                return .written(step: step, path: path, seconds: (ContinuousClock.now - started).inSeconds, bytes: bytes)
            case let .failure(.pruneFailed(path, reason)):
                return .writtenWithoutPruning(step: step, path: path, reason: reason)
            case let .failure(error):
                return .failed(step: step, reason: "\(error)")
            }
        case let .best(checkpoint, summary):
            do {
                return .bestWritten(step: checkpoint.state.step, path: try store.writeBest(checkpoint, summary: summary.json))
            } catch {
                return .bestFailed(step: checkpoint.state.step, reason: "\(error)")
            }
        case let .final(checkpoint, weights, step, epoch, model):
            if let checkpoint {
                switch writeCheckpoint(checkpoint) {
                case .success, .failure(.pruneFailed): break  // written (an old one may stay)
                case let .failure(error): return .finalFailed(step: step, reason: "\(error)")
                }
            }
            do {
                let path = try FinalWeights.write(weights, step: step, epoch: epoch, model: model, into: store.directory)
                return .finalWritten(step: step, path: path)
            } catch {
                return .finalFailed(step: step, reason: "\(error)")
            }
        }
    }

    private func writeCheckpoint(_ checkpoint: Checkpoint) -> Result<String, CheckpointError> {
        do {
            return .success(try store.write(checkpoint))
        } catch {
            return .failure(error)
        }
    }
}
