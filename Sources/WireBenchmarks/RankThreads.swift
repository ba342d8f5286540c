import Foundation
import Wire

/// Runs `body(rank)` for each rank on its own `Thread` (blocking ZeroMQ calls never run on
/// Swift's cooperative pool) and returns the results in rank order, or nil for ranks that had
/// not finished by `timeout`.
public func runOnThreads<T: Sendable>(_ count: Int, timeout: Duration,
                                      _ body: @escaping @Sendable (Int) throws -> T) -> [Result<T, any Error>?] {
    let results = ResultSlots<Result<T, any Error>>(count: count)
    for rank in 0..<count {
        let thread = Thread { results.set(rank, Result { try body(rank) }) }
        thread.stackSize = 4 << 20
        thread.name = "scvae-rank-\(rank)"
        thread.start()
    }
    return results.waitAll(timeout: timeout)
}

/// Values filled in by several threads; waited for with a timeout.
public final class ResultSlots<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var values: [T?]

    public init(count: Int) { values = Array(repeating: nil, count: count) }

    public func set(_ index: Int, _ value: T) {
        condition.lock()
        values[index] = value
        condition.broadcast()
        condition.unlock()
    }

    /// The values once all are set, or at the timeout whatever is set so far.
    public func waitAll(timeout: Duration) -> [T?] {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        while values.contains(where: { $0 == nil }) {
            if !condition.wait(until: deadline) { break }
        }
        return values
    }
}
