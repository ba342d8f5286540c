import Foundation
@testable import Wire
import WireBenchmarks

/// Timing for socket tests: deadlines scaled by SCVAE_DEADLINE_SCALE (default 1) so a loaded
/// machine can be given more room without editing tests.
enum TestTiming {
    static let scale: Double = {
        let raw = ProcessInfo.processInfo.environment["SCVAE_DEADLINE_SCALE"].flatMap(Double.init) ?? 1
        return raw > 0 ? raw : 1
    }()

    static func scaled(_ seconds: Double) -> Duration { .milliseconds(Int(seconds * scale * 1000)) }
}

/// Values filled in by several threads (endpoint boards, results), waited for with a timeout: the
/// benchmark harness's `ResultSlots`.
typealias Slots = ResultSlots

extension ResultSlots {
    /// Every value once all are set, or nil at the timeout.
    func waitForAll(timeout: Duration) -> [T]? {
        let values = waitAll(timeout: timeout)
        let set = values.compactMap { $0 }
        return set.count == values.count ? set : nil
    }

    /// Whether every value is set, without waiting.
    var isComplete: Bool { waitAll(timeout: .zero).allSatisfy { $0 != nil } }
}

/// A rank thread gave up waiting for the others (an endpoint board that never filled).
struct RankTimedOut: Error {
    var rank: Int
}

/// Runs `body(rank)` for each rank on its own `Thread` (the benchmark harness's `runOnThreads`):
/// a rank that has not finished by `timeout` yields nil, so the test fails, it does not hang.
func onRankThreads<T: Sendable>(_ count: Int, timeout: Duration,
                                _ body: @escaping @Sendable (Int) throws -> T) -> [Result<T, any Error>?] {
    runOnThreads(count, timeout: timeout, body)
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
    guard let endpoints = board.waitForAll(timeout: TestTiming.scaled(20)) else {
        throw RingError.peerSilent(rank: -1, endpoint: "board", seconds: 20, step: -1, piece: -1)
    }
    try communicator.connect(toNext: endpoints[(rank + 1) % worldSize])
    return communicator
}
