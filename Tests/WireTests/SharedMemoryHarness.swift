import Foundation
@testable import Wire

/// Builds shared-memory rings of threads: each rank creates its inbox, publishes the endpoint
/// on `board`, and connects to the next rank's. Every ring gets a fresh run id, so tests
/// running side by side never meet each other's segments.
enum SharedMemoryHarness {
    static func freshRunID() -> UInt64 { UInt64.random(in: 1...UInt64.max) }

    static func member(rank: Int, worldSize: Int, runID: UInt64, board: Slots<String>, settings: RingSettings,
                       slotCount: Int = 4, generation: UInt64 = 1) throws -> SharedMemoryRing {
        let ring = try SharedMemoryRing(rank: rank, worldSize: worldSize, runID: runID,
                                        bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: generation, rank: rank),
                                        settings: settings, slotCount: slotCount)
        board.set(rank, ring.endpoint)
        guard let endpoints = board.waitForAll(timeout: TestTiming.scaled(20)) else {
            throw RingError.collectiveThreadTimedOut(job: "endpoint board", seconds: 20)
        }
        try ring.connect(toNext: endpoints[(rank + 1) % worldSize])
        return ring
    }

    /// Whether `/dev/shm/NAME` exists for `shm://NAME`.
    static func segmentExists(_ endpoint: String) -> Bool {
        guard let name = SharedMemoryEndpoint.name(of: endpoint) else { return false }
        return FileManager.default.fileExists(atPath: "/dev/shm/\(name)")
    }

    /// The id of a process that has exited (so is certainly dead).
    static func deadProcessID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }
}
