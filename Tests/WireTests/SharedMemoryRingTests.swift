import Foundation
import Testing
@testable import Wire

/// The shared-memory ring between threads: the same results, bit for bit, as the ZeroMQ ring's
/// machine; broadcasts; generations; dead, closed and slow neighbours.
@Suite(.serialized) struct SharedMemoryRingTests {
    static let lengths = [1, 3, 4_099, 100_003]

    /// N = 1..4, lengths shorter than N, not divisible by N, many pieces through 2 slots (the
    /// next rank's inbox is often full: pieces wait, then are copied) or 64 (most pieces are
    /// reduced straight into the next rank's slot): every rank ends with the in-memory
    /// machine's bytes (the ZeroMQ ring's order of sums), twice in a row (sequence 1 on the
    /// same segments); bytes sent are 2(N-1)/N of the buffer.
    @Test(arguments: 1...4, [2, 64])
    func allReduceIsBitIdenticalOnEveryRank(worldSize: Int, slotCount: Int) throws {
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10), checksumData: worldSize == 3)
        let inputs = Self.lengths.map { RingScheduleTests.inputs(worldSize: worldSize, length: $0, seed: UInt64($0)) }
        let expected = try inputs.map { try RingScheduleTests.runAllReduce($0, pieceElements: 1024).results[0] }
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [[Float]] in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: worldSize, runID: runID, board: board,
                                                      settings: settings, slotCount: slotCount)
            defer { ring.close() }
            var bytesExpected = 0
            let outputs = try inputs.map { perRank -> [Float] in
                var buffer = perRank[rank]
                try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
                var again = perRank[rank]
                try again.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
                #expect(again.map(\.bitPattern) == buffer.map(\.bitPattern))
                let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: buffer.count)
                bytesExpected += 2 * schedule.elementsSent * 4
                return buffer
            }
            #expect(ring.statistics.bytesSent == bytesExpected)
            #expect(ring.statistics.piecesDropped == 0)
            // With room for a whole chunk, the first forwarded piece always goes in one pass
            // (checked data is forwarded by copy: the checksum covers the buffer's bytes).
            if worldSize > 1 && slotCount == 64 && !settings.checksumData { #expect(ring.piecesForwardedInOnePass > 0) }
            return outputs
        }
        for rank in 0..<worldSize {
            guard case let .success(outputs)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            for (index, output) in outputs.enumerated() {
                #expect(output.map(\.bitPattern) == expected[index].map(\.bitPattern),
                        "N=\(worldSize) rank \(rank) length \(Self.lengths[index])")
            }
        }
    }

    /// Small integers add exactly in any order: the result is the plain sum.
    @Test func allReduceEqualsThePlainSum() throws {
        let worldSize = 3, length = 10_007
        let inputs: [[Float]] = (0..<worldSize).map { rank in Self.smallIntegers(length: length, seed: rank) }
        var plainSum = [Float](repeating: 0, count: length)
        for input in inputs {
            for index in 0..<length { plainSum[index] += input[index] }
        }
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 1 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [Float] in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: worldSize, runID: runID, board: board, settings: settings)
            defer { ring.close() }
            var buffer = inputs[rank]
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 7) }
            return buffer
        }
        for rank in 0..<worldSize {
            guard case let .success(buffer)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            #expect(buffer == plainSum, "rank \(rank)")
        }
    }

    static func smallIntegers(length: Int, seed: Int) -> [Float] {
        (0..<length).map { index -> Float in
            let value: Int = (index * 7 + seed * 13) % 101 - 50
            return Float(value)
        }
    }

    /// Every root's buffer reaches every rank; a new generation resets the sequence.
    @Test(arguments: [2, 3])
    func broadcastFromEachRoot(worldSize: Int) throws {
        let length = 50_001
        let inputs = RingScheduleTests.inputs(worldSize: worldSize, length: length, seed: 9)
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 32 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [[Float]] in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: worldSize, runID: runID, board: board, settings: settings)
            defer { ring.close() }
            return try (0..<worldSize).map { root in
                var buffer = inputs[rank]
                try buffer.withUnsafeMutableBufferPointer { try ring.broadcast($0, root: root, generation: UInt64(2 + root / 2)) }
                return buffer
            }
        }
        for rank in 0..<worldSize {
            guard case let .success(buffers)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            for root in 0..<worldSize { #expect(buffers[root] == inputs[root], "rank \(rank) root \(root)") }
        }
    }

    /// Rank 0 broadcasts in generation 1 while rank 1 has moved on to generation 2: rank 1
    /// finds those pieces first in its inbox, drops them without touching its buffer, and
    /// completes generation 2's all-reduce with the right sum.
    @Test func piecesOfAnOlderGenerationAreNotApplied() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: 2)
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        let stalePieces = 3
        let results = onRankThreads(2, timeout: TestTiming.scaled(60)) { rank -> (buffer: [Float], dropped: Int) in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: 2, runID: runID, board: board,
                                                      settings: settings, slotCount: 8)
            defer { ring.close() }
            if rank == 0 {
                var old = [Float](repeating: 1000, count: stalePieces * 1024)
                try old.withUnsafeMutableBufferPointer { try ring.broadcast($0, root: 0, generation: 1) }
            }
            var buffer = [Float](repeating: Float(rank + 1), count: 20_000)
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 2) }
            return (buffer, ring.statistics.piecesDropped)
        }
        guard case let .success(one)? = results[1], case let .success(zero)? = results[0] else {
            Issue.record("\(String(describing: results))"); return
        }
        #expect(one.dropped == stalePieces)
        #expect(zero.dropped == 0)
        #expect(one.buffer.allSatisfy { $0 == 3 })
        #expect(zero.buffer.allSatisfy { $0 == 3 })
    }

    /// A slot that does not read as a piece (here: an unknown collective code) is the only copy
    /// of that piece, so it is not skipped: it is counted as malformed and fails the
    /// collective with an error naming the producer; the ring is broken (a new one is made for
    /// the next generation).
    @Test func aCorruptSlotIsCountedAndFailsTheCollective() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        let zero = try SharedMemoryRing(rank: 0, worldSize: 2, runID: runID,
                                        bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 0), settings: settings)
        defer { zero.close() }
        let one = try SharedMemoryRing(rank: 1, worldSize: 2, runID: runID,
                                       bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 1), settings: settings)
        defer { one.close() }
        try one.connect(toNext: zero.endpoint)
        // The test writes into rank 1's inbox where rank 0 would.
        let name = try #require(SharedMemoryEndpoint.name(of: one.endpoint))
        let segment = try #require(try SharedMemorySegment.open(name: name, minimumSize: InboxLayout.controlBytes))
        guard case let .success((inbox, _))? = Inbox.read(segment.base, size: segment.size) else {
            Issue.record("rank 1's inbox does not read as one"); return
        }
        let header = RingChunkHeader(collective: .allReduce, sequence: 0, sourceRank: 0, ringStep: 0, piece: 0,
                                     elementOffset: 0, elementCount: 1024)
        [Float](repeating: 1, count: 1024).withUnsafeBytes { PieceSlot.write(inbox.slot(0), generation: 1, header: header, data: $0) }
        inbox.slot(0).storeBytes(of: UInt8(99), toByteOffset: 24, as: UInt8.self)
        inbox.published.pointee.store(1, ordering: .releasing)

        var buffer = [Float](repeating: 2, count: 4096)
        do {
            try buffer.withUnsafeMutableBufferPointer { try one.allReduce($0, generation: 1) }
            Issue.record("the collective completed")
        } catch let RingError.unexpectedPiece(rank, _, found) {
            #expect(rank == 0)
            #expect(found.contains("99"))
        } catch {
            Issue.record("\(error)")
        }
        #expect(one.statistics.malformedMessagesDropped == 1)
        #expect(one.statistics.piecesReceived == 0)
        #expect(one.isBroken)
    }

    /// A neighbour that attached and then stopped (as a killed process would: it never says
    /// goodbye): the rank waiting on it gets `.peerSilent` naming it once the silence deadline
    /// passed; the others fail at once when that rank leaves the ring. Never a hang.
    @Test(arguments: [2, 3])
    func silentNeighbourIsATypedErrorWithinTheDeadline(worldSize: Int) throws {
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: worldSize)
        let deadline = TestTiming.scaled(0.5)
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: deadline)
        let silent = worldSize - 1
        let survivorsDone = Slots<Bool>(count: worldSize - 1)
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> (RingError?, Duration) in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: worldSize, runID: runID, board: board, settings: settings)
            defer { ring.close() }
            if rank == silent {
                _ = survivorsDone.waitForAll(timeout: TestTiming.scaled(30))
                return (nil, .zero)
            }
            defer { survivorsDone.set(rank, true) }
            var buffer = [Float](repeating: 1, count: 10_000)
            let start = ContinuousClock.now
            do {
                try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
                return (nil, ContinuousClock.now - start)
            } catch let error as RingError {
                return (error, ContinuousClock.now - start)
            }
        }
        guard case let .success((error, elapsed))? = results[0] else { Issue.record("rank 0: \(String(describing: results[0]))"); return }
        guard case let .peerSilent(rank, endpoint, seconds, _, _)? = error else { Issue.record("rank 0 got \(String(describing: error))"); return }
        #expect(rank == silent)
        #expect(endpoint == nil)
        #expect(seconds >= deadline.inSeconds)
        #expect(elapsed < deadline + TestTiming.scaled(10))
        for survivor in 1..<silent {
            guard case let .success((survivorError, _))? = results[survivor], survivorError != nil else {
                Issue.record("rank \(survivor): \(String(describing: results[survivor]))"); continue
            }
        }
    }

    /// A neighbour that closed its ring is an error at once, long before the silence deadline.
    @Test func closedNeighbourFailsTheCollectiveAtOnce() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: 2)
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: .seconds(3600))
        let connected = Slots<Bool>(count: 2)
        let results = onRankThreads(2, timeout: TestTiming.scaled(30)) { rank -> RingError? in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: 2, runID: runID, board: board, settings: settings)
            defer { ring.close() }
            connected.set(rank, true)
            if rank == 1 {
                _ = connected.waitForAll(timeout: TestTiming.scaled(20))   // rank 0 has mapped this inbox
                ring.close()
                return nil
            }
            var buffer = [Float](repeating: 1, count: 100_000)
            do {
                try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
                return nil
            } catch let error as RingError {
                #expect(ring.isBroken)
                return error
            }
        }
        guard case let .success(error)? = results[0] else { Issue.record("rank 0: \(String(describing: results[0]))"); return }
        switch error {
        case .peerSilent(rank: 1, _, _, _, _)?, .sendStalled(rank: 1, _, _)?: break
        default: Issue.record("rank 0 got \(String(describing: error))")
        }
    }

    /// A silent peer that the liveness hook vouches for is waited for (stalls reported), and
    /// becomes an error once the hook says it is gone.
    @Test func liveButSilentPeerIsReportedAsAStallFirst() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: 2)
        let answers = Counter()
        let stallReports = Counter()
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(0.2),
                                    isPeerAlive: { _ in answers.increment() <= 2 },
                                    onStall: { _, _ in _ = stallReports.increment() })
        let rankZeroDone = Slots<Bool>(count: 1)
        let results = onRankThreads(2, timeout: TestTiming.scaled(60)) { rank -> RingStatistics in
            let ring = try SharedMemoryHarness.member(rank: rank, worldSize: 2, runID: runID, board: board, settings: settings)
            defer { ring.close() }
            guard rank == 0 else {
                _ = rankZeroDone.waitForAll(timeout: TestTiming.scaled(30))
                return RingStatistics()
            }
            defer { rankZeroDone.set(0, true) }
            var buffer = [Float](repeating: 1, count: 100)
            #expect(throws: RingError.self) { try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) } }
            return ring.statistics
        }
        guard case let .success(statistics)? = results[0] else { Issue.record("\(String(describing: results[0]))"); return }
        #expect(statistics.stalls == 2)
        #expect(stallReports.value == 2)
    }

    /// The collective thread drives a shared-memory ring exactly as a ZeroMQ one: buckets in
    /// submission order, then a broadcast.
    @Test func collectiveThreadDrivesTheSharedMemoryRing() throws {
        let worldSize = 3
        let length = 30_011
        let inputs = RingScheduleTests.inputs(worldSize: worldSize, length: length, seed: 5)
        let buckets = [0..<7, 7..<20_000, 20_000..<length]
        let expected = try buckets.map { bucket in
            try RingScheduleTests.runAllReduce(inputs.map { Array($0[bucket]) }, pieceElements: 2048).results[0]
        }.flatMap { $0 }
        let runID = SharedMemoryHarness.freshRunID()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 8 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [Float] in
            let collectives = try CollectiveThread { () throws(RingError) -> SharedMemoryRing in
                try SharedMemoryRing(rank: rank, worldSize: worldSize, runID: runID,
                                     bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 4, rank: rank),
                                     settings: settings)
            }
            defer { _ = try? collectives.wait(collectives.stop(), timeout: TestTiming.scaled(10)) }
            board.set(rank, collectives.endpoint)
            guard let endpoints = board.waitForAll(timeout: TestTiming.scaled(20)) else { throw RankTimedOut(rank: rank) }
            _ = try collectives.wait(collectives.connect(toNext: endpoints[(rank + 1) % worldSize]), timeout: TestTiming.scaled(20))
            var buffer = inputs[rank]
            try buffer.withUnsafeMutableBufferPointer { pointer in
                let tickets = buckets.reversed().map { bucket in
                    collectives.allReduce(UnsafeMutableBufferPointer(rebasing: pointer[bucket]), generation: 4)
                }
                for ticket in tickets { _ = try collectives.wait(ticket, timeout: TestTiming.scaled(30)) }
            }
            var fromRoot = inputs[rank]
            try fromRoot.withUnsafeMutableBufferPointer { pointer in
                _ = try collectives.wait(collectives.broadcast(pointer, root: 2, generation: 4), timeout: TestTiming.scaled(30))
            }
            #expect(fromRoot == inputs[2])
            return buffer
        }
        for rank in 0..<worldSize {
            guard case let .success(buffer)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            #expect(buffer.map(\.bitPattern) == expected.map(\.bitPattern), "rank \(rank)")
        }
    }
}
