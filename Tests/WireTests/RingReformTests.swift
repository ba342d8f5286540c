import Foundation
import Testing
@testable import Wire

extension SocketTests {
    /// A rank that moved to a new generation first sends pieces its neighbour (still in the old
    /// generation) receives: the neighbour's old collective fails with `newerGeneration`, keeps
    /// the piece, and after `reform` the new generation's all-reduce uses it: nothing is lost,
    /// and the receiving socket (the endpoint the others know) stays the same.
    @Test func aReformedRingKeepsPiecesOfTheNewerGenerationThatArriveEarly() throws {
        let length = 10_001
        let inputs = RingScheduleTests.inputs(worldSize: 2, length: length, seed: 21)
        let expected = zip(inputs[0], inputs[1]).map { $0 + $1 }
        let context = try ZmqContext()
        let board = Slots<String>(count: 2)
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        let reformed = Slots<Bool>(count: 1)
        // Rank 0 has all of generation 1 before rank 1 moves on: rank 1's last pieces of generation 1
        // and its first of generation 2 leave on different connections, so without this barrier a
        // generation-2 piece can overtake them and fail rank 0's first all-reduce (seen once in CI).
        let firstDone = Slots<Bool>(count: 1)
        let results = onRankThreads(2, timeout: TestTiming.scaled(60)) { rank -> [Float] in
            let ring = try makeRingMember(rank: rank, worldSize: 2, context: context, transport: "tcp", board: board, settings: settings)
            defer { ring.close() }
            let endpoint = ring.endpoint
            var first = inputs[rank]
            try first.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
            #expect(first.map(\.bitPattern) == expected.map(\.bitPattern))
            let next = board.waitForAll(timeout: TestTiming.scaled(10))![(rank + 1) % 2]
            if rank == 1 {
                // Rank 1 moves on to generation 2 as soon as rank 0 has finished generation 1.
                _ = firstDone.waitForAll(timeout: TestTiming.scaled(10))
                try ring.reform(rank: 1, worldSize: 2, runID: ring.runID)
                try ring.connect(toNext: next)
                reformed.set(0, true)
            } else {
                // Rank 0 is still in generation 1 when rank 1's first piece of generation 2 comes.
                firstDone.set(0, true)
                _ = reformed.waitForAll(timeout: TestTiming.scaled(10))
                var stale = inputs[rank]
                #expect(throws: RingError.self) {
                    try stale.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
                }
                try ring.reform(rank: 0, worldSize: 2, runID: ring.runID)
                try ring.connect(toNext: next)
            }
            #expect(ring.endpoint == endpoint, "the receiving socket stays bound")
            var second = inputs[rank]
            try second.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 2) }
            return second
        }
        for rank in 0..<2 {
            switch results[rank] {
            case let .success(buffer)?: #expect(buffer.map(\.bitPattern) == expected.map(\.bitPattern), "rank \(rank)")
            case let .failure(error)?: Issue.record("rank \(rank): \(error)")
            case nil: Issue.record("rank \(rank) did not finish in time")
            }
        }
    }
}
