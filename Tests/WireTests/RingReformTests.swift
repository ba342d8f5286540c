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

    /// The chaos run: rank 0 ran many collectives in generation 1 of run A; rank 1 died and a
    /// fresh process takes its place when a restarted coordinator (run B) forms generation 1
    /// again. Rank 0 is reformed in place: its collectives are numbered from #0 like the fresh
    /// rank's, so both complete, and what the old incarnation still sends (run A, generation 1,
    /// collective #69, and a generation 2 it never reached) is dropped as another run's.
    @Test func aRankReformedUnderANewRunWithTheSameGenerationStartsAfresh() throws {
        let context = try ZmqContext()
        let runA: UInt64 = 0xA11CE, runB: UInt64 = 0xB0B
        let length = 5_000
        let earlier = 69
        let inputs = RingScheduleTests.inputs(worldSize: 2, length: length, seed: 69)
        let expected = try RingScheduleTests.runAllReduce(inputs, pieceElements: 1024).results[0]
        let firstRun = Slots<String>(count: 2)
        let freshEndpoint = Slots<String>(count: 1)
        let box = RingBox()
        let board = StatisticsBoard()
        let giveUp = ContinuousClock.now + TestTiming.scaled(40)
        // Rank 0 publishes its statistics while it waits in short slices for the fresh rank.
        let watched = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(0.05),
                                   isPeerAlive: { _ in ContinuousClock.now < giveUp },
                                   onStall: { _, _ in if let statistics = box.ring?.statistics { board.publish(statistics) } })
        let plain = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(2, timeout: TestTiming.scaled(90)) { rank -> (allReduced: [Float], broadcast: [Float], statistics: RingStatistics) in
            let old = try makeRingMember(rank: rank, worldSize: 2, context: context, transport: "tcp", board: firstRun,
                                         runID: runA, settings: rank == 0 ? watched : plain)
            for index in 0..<earlier {
                var buffer = inputs[rank]
                if index % 3 == 2 {
                    try buffer.withUnsafeMutableBufferPointer { try old.broadcast($0, root: index % 2, generation: 1) }
                    #expect(buffer == inputs[index % 2])
                } else {
                    try buffer.withUnsafeMutableBufferPointer { try old.allReduce($0, generation: 1) }
                    #expect(buffer.map(\.bitPattern) == expected.map(\.bitPattern))
                }
            }
            let ring: RingCommunicator
            if rank == 1 {
                // This process dies; a fresh one joins run B.
                old.close()
                ring = try RingCommunicator(context: context, rank: 1, worldSize: 2, runID: runB, bindTo: "tcp://127.0.0.1:*",
                                            settings: plain)
                freshEndpoint.set(0, ring.endpoint)
                try ring.connect(toNext: firstRun.waitForAll(timeout: TestTiming.scaled(10))![0])
                guard board.wait(timeout: TestTiming.scaled(20), until: { $0.foreignFramesDropped >= 2 }) != nil else {
                    throw RankTimedOut(rank: 0)
                }
            } else {
                ring = old
                box.ring = ring
                try ring.reform(rank: 0, worldSize: 2, runID: runB)
                guard let fresh = freshEndpoint.waitForAll(timeout: TestTiming.scaled(20)) else { throw RankTimedOut(rank: 1) }
                try ring.connect(toNext: fresh[0])
                // The old incarnation of rank 1 still had these on their way.
                let leftovers = try ZmqSocket(context, type: .push, linger: TestTiming.scaled(5))
                defer { leftovers.close() }
                try leftovers.connect(ring.endpoint)
                let poison = [Float](repeating: 1000, count: 1024).withUnsafeBytes { Array($0) }
                for (generation, sequence) in [(1, UInt64(earlier)), (2, 0)] as [(UInt64, UInt64)] {
                    let header = RingChunkHeader(collective: .allReduce, sequence: sequence, sourceRank: 1, ringStep: 0, piece: 0,
                                                 elementOffset: 2_500, elementCount: 1024)
                    try leftovers.send(parts: [Envelope(generation: generation, runID: runA, message: .ringChunk(header)).encoded(), poison],
                                       deadline: .now + TestTiming.scaled(5))
                }
            }
            defer { ring.close() }
            var allReduced = inputs[rank]
            try allReduced.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
            var broadcast = inputs[rank]
            try broadcast.withUnsafeMutableBufferPointer { try ring.broadcast($0, root: 1, generation: 1) }
            return (allReduced, broadcast, ring.statistics)
        }
        for rank in 0..<2 {
            guard case let .success(result)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            #expect(result.allReduced.map(\.bitPattern) == expected.map(\.bitPattern), "rank \(rank)")
            #expect(result.broadcast == inputs[1], "rank \(rank)")
        }
        guard case let .success(zero)? = results[0], case let .success(one)? = results[1] else { return }
        #expect(zero.statistics.foreignFramesDropped == 2)
        #expect(zero.statistics.piecesDropped == 0 && zero.statistics.malformedMessagesDropped == 0)
        #expect(one.statistics.messagesDropped == 0)
    }
}
