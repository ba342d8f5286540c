import Foundation
@testable import Wire

/// Timing for socket tests: deadlines scaled by SCVAE_DEADLINE_SCALE (default 1) so a loaded
/// machine can be given more room without editing tests.
enum TestTiming {
    static let scale: Double = {
        let raw = ProcessInfo.processInfo.environment["SCVAE_DEADLINE_SCALE"].flatMap(Double.init) ?? 1
        return raw > 0 ? raw : 1
    }()

    static func scaled(_ seconds: Double) -> Duration { .milliseconds(Int(seconds * scale * 1000)) }
}

/// Results written by rank threads.
final class Slots<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var values: [T?]

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: T) {
        condition.lock()
        values[index] = value
        condition.broadcast()
        condition.unlock()
    }

    /// All values once every slot is set, or nil at the timeout.
    func waitAll(timeout: Duration) -> [T]? {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        while values.contains(where: { $0 == nil }) {
            if !condition.wait(until: deadline) { return nil }
        }
        return values.compactMap { $0 }
    }

    var snapshot: [T?] {
        condition.lock()
        defer { condition.unlock() }
        return values
    }
}

/// Runs `body(rank)` for each rank on its own `Thread` (never the cooperative pool) and waits
/// at most `timeout`. A rank that has not finished by then yields nil: the test fails, not hangs.
func onRankThreads<T: Sendable>(_ count: Int, timeout: Duration,
                                _ body: @escaping @Sendable (Int) throws -> T) -> [Result<T, any Error>?] {
    let slots = Slots<Result<T, any Error>>(count: count)
    for rank in 0..<count {
        let thread = Thread {
            slots.set(rank, Result { try body(rank) })
        }
        thread.stackSize = 4 << 20
        thread.name = "rank-\(rank)"
        thread.start()
    }
    _ = slots.waitAll(timeout: timeout)
    return slots.snapshot
}

/// Builds a ring of `worldSize` communicators, one per thread, exchanging bound endpoints
/// through `board`; returns the communicator of `rank` connected to its next rank.
func makeRingMember(rank: Int, worldSize: Int, context: ZmqContext, transport: String, board: Slots<String>,
                    runID: UInt64 = 0xC0FFEE, settings: RingSettings) throws -> RingCommunicator {
    let bindEndpoint = transport == "ipc"
        ? "ipc:///tmp/scvae-wire-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(rank)"
        : "tcp://127.0.0.1:*"
    let communicator = try RingCommunicator(context: context, rank: rank, worldSize: worldSize, runID: runID,
                                            bindTo: bindEndpoint, settings: settings)
    board.set(rank, communicator.endpoint)
    guard let endpoints = board.waitAll(timeout: TestTiming.scaled(20)) else {
        throw RingError.peerSilent(rank: -1, endpoint: "board", seconds: 20, step: -1, piece: -1)
    }
    try communicator.connect(toNext: endpoints[(rank + 1) % worldSize])
    return communicator
}
