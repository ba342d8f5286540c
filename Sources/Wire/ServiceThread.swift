import Foundation

/// The life of a service thread (the ZAP handler, a socket monitor) as its owner and the thread
/// share it, under one lock: whether it started (or why not), whether a stop was asked for,
/// whether it ended, and `State` of the service's own (counters, settings).
final class ServiceThreadState<Failure: Error, State>: @unchecked Sendable {
    private let condition = NSCondition()
    private var startResult: Result<Void, Failure>?
    private var stopping = false
    private var finished = false
    private var state: State

    init(_ state: State) { self.state = state }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    /// Reads or changes the service's state under the lock.
    func withState<T>(_ body: (inout State) -> T) -> T { locked { body(&state) } }

    var stopRequested: Bool { locked { stopping } }

    /// Started, and neither stopped nor ended.
    var isRunning: Bool {
        locked {
            guard case .success? = startResult else { return false }
            return !stopping && !finished
        }
    }

    /// The thread says whether it could start.
    func started(_ result: Result<Void, Failure>) {
        locked { startResult = result; condition.broadcast() }
    }

    /// The thread ends; one that never said whether it started is taken to have failed with `failure`.
    func finish(ifNeverStarted failure: Failure) {
        locked {
            finished = true
            if startResult == nil { startResult = .failure(failure) }
            condition.broadcast()
        }
    }

    func requestStop() { locked { stopping = true } }

    /// Whether the thread started, waiting at most `timeout` seconds; nil if it has not said.
    func waitUntilStarted(timeout: Double) -> Result<Void, Failure>? {
        waitFor(timeout: timeout) { startResult }
    }

    /// Whether the thread ended within `timeout` seconds.
    func waitUntilFinished(timeout: Double) -> Bool {
        waitFor(timeout: timeout) { finished ? true : nil } ?? false
    }

    private func waitFor<T>(timeout: Double, _ value: () -> T?) -> T? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let result = value() { return result }
            if !condition.wait(until: deadline) { return value() }
        }
    }
}
