import Foundation
import Testing
@testable import Wire

extension SocketTests {
    static let ringCases: [(worldSize: Int, transport: String)] = [(2, "tcp"), (3, "tcp"), (4, "tcp"), (2, "ipc"), (3, "ipc")]

    /// N threads, real sockets: the result equals the in-memory machine's bit for bit (same
    /// order of sums), on every rank.
    @Test(arguments: 0..<5)
    func allReduceOverSockets(caseIndex: Int) throws {
        let (worldSize, transport) = Self.ringCases[caseIndex]
        let length = 100_003
        let inputs = RingScheduleTests.inputs(worldSize: worldSize, length: length, seed: UInt64(worldSize))
        let expected = try RingScheduleTests.runAllReduce(inputs, pieceElements: 4096).results[0]
        let context = try ZmqContext()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 16 << 10, silenceDeadline: TestTiming.scaled(10), checksumData: caseIndex % 2 == 0)
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [Float] in
            let ring = try makeRingMember(rank: rank, worldSize: worldSize, context: context, transport: transport,
                                          board: board, settings: settings)
            defer { ring.close() }
            var buffer = inputs[rank]
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
            // A second collective in the same generation (sequence 1) on the same sockets.
            var again = inputs[rank]
            try again.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
            #expect(again.map(\.bitPattern) == buffer.map(\.bitPattern))
            #expect(ring.statistics.bytesSent == 2 * RingSchedule(rank: rank, worldSize: worldSize, elementCount: length).elementsSent * 4)
            return buffer
        }
        for rank in 0..<worldSize {
            switch results[rank] {
            case let .success(buffer)?:
                #expect(buffer.map(\.bitPattern) == expected.map(\.bitPattern), "N=\(worldSize) \(transport) rank \(rank)")
            case let .failure(error)?: Issue.record("rank \(rank): \(error)")
            case nil: Issue.record("rank \(rank) did not finish in time")
            }
        }
    }

    @Test func broadcastFromEachRootOverSockets() throws {
        let worldSize = 3
        let length = 50_001
        let inputs = RingScheduleTests.inputs(worldSize: worldSize, length: length, seed: 9)
        let context = try ZmqContext()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 32 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [[Float]] in
            let ring = try makeRingMember(rank: rank, worldSize: worldSize, context: context, transport: "tcp",
                                          board: board, settings: settings)
            defer { ring.close() }
            return try (0..<worldSize).map { root in
                var buffer = inputs[rank]
                // Generation 2 then 3: a new generation resets the collective sequence.
                try buffer.withUnsafeMutableBufferPointer { try ring.broadcast($0, root: root, generation: UInt64(2 + root / 2)) }
                return buffer
            }
        }
        for rank in 0..<worldSize {
            guard case let .success(buffers)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            for root in 0..<worldSize { #expect(buffers[root] == inputs[root], "rank \(rank) root \(root)") }
        }
    }

    /// Pieces of an older generation, frames of another run and messages of too many parts
    /// are dropped and counted; a message larger than a piece is never delivered (libzmq
    /// drops its sender). Deterministic: rank 0 starts its collective only once rank 1 has
    /// counted every intruder message, so all of them are seen within rank 1's collective.
    @Test func staleForeignAndMalformedMessagesAreDropped() throws {
        let worldSize = 2
        let context = try ZmqContext()
        let board = Slots<String>(count: worldSize)
        let observed = Slots<Bool>(count: 1)
        let rankOne = RingBox()
        let giveUp = ContinuousClock.now + TestTiming.scaled(30)
        let plain = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        // Rank 1 waits for rank 0 in short slices (stalls, bounded by `giveUp`); after each it
        // checks its counters, on its own thread, and releases rank 0 once all are in.
        let watching = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(0.05),
                                    isPeerAlive: { _ in ContinuousClock.now < giveUp },
                                    onStall: { _, _ in
                                        guard let seen = rankOne.ring?.statistics, seen.piecesDropped == 1,
                                              seen.foreignFramesDropped == 1, seen.malformedMessagesDropped == 1 else { return }
                                        observed.set(0, true)
                                    })
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> RingStatistics in
            let ring = try makeRingMember(rank: rank, worldSize: worldSize, context: context, transport: "tcp",
                                          board: board, settings: rank == 1 ? watching : plain)
            defer { ring.close() }
            if rank == 1 {
                rankOne.ring = ring
            } else {
                let deadline = ContinuousClock.now + TestTiming.scaled(5)
                // Lingering sockets: closing them must not drop what they sent.
                let oversized = try ZmqSocket(context, type: .push, linger: TestTiming.scaled(5))
                defer { oversized.close() }
                try oversized.connect(ring.nextEndpoint)
                // Undecodable: delivered, it would fail rank 1's collective with `.badFrame`.
                try oversized.send([UInt8](repeating: 0xFF, count: plain.maxReceivedPartBytes + 1), deadline: deadline)
                let intruder = try ZmqSocket(context, type: .push, linger: TestTiming.scaled(5))
                defer { intruder.close() }
                try intruder.connect(ring.nextEndpoint)
                let stale = RingChunkHeader(collective: .allReduce, sequence: 0, sourceRank: 0, ringStep: 0, piece: 0,
                                            elementOffset: 0, elementCount: 1)
                let staleFrame = Envelope(generation: 1, runID: 0xC0FFEE, message: .ringChunk(stale)).encoded()
                try intruder.send(parts: [staleFrame, [0, 0, 0, 0]], deadline: deadline)
                try intruder.send(parts: [Envelope(generation: 2, runID: 0xBAD, message: .ringChunk(stale)).encoded(), [0, 0, 0, 0]],
                                  deadline: deadline)
                try intruder.send(parts: [staleFrame, [0, 0, 0, 0], [1]], deadline: deadline)
                guard observed.waitForAll(timeout: TestTiming.scaled(20)) != nil else {
                    throw RingError.collectiveThreadTimedOut(job: "rank 1 counting the intruder's messages", seconds: 20)
                }
            }
            var buffer = [Float](repeating: Float(rank + 1), count: 40_000)
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 2) }
            #expect(buffer.allSatisfy { $0 == 3 })
            return ring.statistics
        }
        guard case let .success(statistics)? = results[1] else { Issue.record("rank 1: \(String(describing: results[1]))"); return }
        guard case .success? = results[0] else { Issue.record("rank 0: \(String(describing: results[0]))"); return }
        #expect(statistics.piecesDropped == 1)
        #expect(statistics.foreignFramesDropped == 1)
        #expect(statistics.malformedMessagesDropped == 1)
    }

    /// A next rank nobody listens for (a wrong address, a firewall): the connection fails within
    /// the connect deadline with an error naming that rank and its endpoint, never a silent wait.
    @Test func aNextRankNobodyListensForFailsTheConnectionInTime() throws {
        let context = try ZmqContext()
        // A port held, for the whole test, by a TCP socket that is bound but never listens:
        // connections to it are refused, and no other test can take the port meanwhile.
        let holder = try #require(UnlistenedPort())
        defer { holder.close() }
        let endpoint = "tcp://127.0.0.1:\(holder.port)"
        let ring = try RingCommunicator(context: context, rank: 0, worldSize: 2, runID: 1, bindTo: "tcp://127.0.0.1:*",
                                        settings: RingSettings(connectDeadline: .milliseconds(300)))
        defer { ring.close() }
        do {
            try ring.connect(toNext: endpoint)
            Issue.record("connected to \(endpoint), where nobody listens")
        } catch {
            guard case let .unreachable(rank, unreachableEndpoint, _) = error else { Issue.record("\(error)"); return }
            #expect(rank == 1 && unreachableEndpoint == endpoint && "\(error)".contains("nobody listens there"), "\(error)")
        }
    }

    /// Setup failures name this rank; the receiving socket refuses parts larger than a piece.
    @Test func ringSetupErrorsNameThisRankAndTheReceiverIsSizeLimited() throws {
        let context = try ZmqContext()
        let settings = RingSettings(pieceBytes: 64 << 10)
        do {
            _ = try RingCommunicator(context: context, rank: 1, worldSize: 3, runID: 1, bindTo: "tcp://not-an-address:*",
                                     settings: settings)
            Issue.record("bind succeeded")
        } catch {
            guard case let .transport(rank, _) = error else { Issue.record("\(error)"); return }
            #expect(rank == 1)
        }
        let ring = try RingCommunicator(context: context, rank: 1, worldSize: 3, runID: 1, bindTo: "tcp://127.0.0.1:*",
                                        settings: settings)
        defer { ring.close() }
        #expect(try ring.receiver.maxMessageSize() == Int64(64 << 10) + Int64(ZmqSocket.messageSizeMargin))
    }

    /// A neighbour that goes away: the survivor gets `.peerSilent` naming it, within the
    /// deadline plus a generous bound, never a hang.
    @Test(arguments: [2, 3])
    func deadNeighbourIsATypedErrorInTime(worldSize: Int) throws {
        let context = try ZmqContext()
        let board = Slots<String>(count: worldSize)
        let deadline = TestTiming.scaled(1)
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: deadline)
        let dead = worldSize - 1
        let connected = Slots<Bool>(count: worldSize)
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> (RingError?, Duration) in
            let ring = try makeRingMember(rank: rank, worldSize: worldSize, context: context, transport: "tcp",
                                          board: board, settings: settings)
            connected.set(rank, true)
            if rank == dead {
                // Joined the ring (every rank's connection is up), then went away.
                _ = connected.waitForAll(timeout: TestTiming.scaled(30))
                ring.close()
                return (nil, .zero)
            }
            defer { ring.close() }
            var buffer = [Float](repeating: 1, count: 10_000)
            let start = ContinuousClock.now
            do {
                try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
                return (nil, ContinuousClock.now - start)
            } catch let error as RingError {
                return (error, ContinuousClock.now - start)
            }
        }
        // Rank 0 receives from the dead rank directly.
        guard case let .success((error, elapsed))? = results[0] else { Issue.record("rank 0: \(String(describing: results[0]))"); return }
        guard case let .peerSilent(rank, endpoint, seconds, _, _)? = error else { Issue.record("rank 0 got \(String(describing: error))"); return }
        #expect(rank == dead)
        // Rank 0 knows only its own bound endpoint, not the silent rank's: none is claimed.
        #expect(endpoint == nil)
        #expect(error?.description.contains("endpoint unknown") == true)
        #expect(seconds >= deadline.inSeconds)
        #expect(elapsed < deadline + TestTiming.scaled(10))
        // Every other survivor also ends with a typed error rather than hanging.
        for survivor in 1..<dead {
            guard case let .success((survivorError, _))? = results[survivor], survivorError != nil else {
                Issue.record("rank \(survivor): \(String(describing: results[survivor]))"); continue
            }
        }
    }

    /// A silent peer that the liveness hook vouches for is waited for (stalls counted), and
    /// becomes an error once the hook says it is gone.
    @Test func liveButSilentPeerIsReportedAsAStallFirst() throws {
        let context = try ZmqContext()
        let board = Slots<String>(count: 2)
        let counter = Counter()
        let stallReports = Counter()
        let connected = Slots<Bool>(count: 2)
        // The hook vouches for rank 1 twice, counted only once both connections are up, so a
        // slow connect (which also asks the hook) cannot use up the two answers.
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(0.2),
                                    isPeerAlive: { peer in
                                        guard peer == 1, connected.isComplete else { return true }
                                        return counter.increment() <= 2
                                    },
                                    onStall: { _, _ in _ = stallReports.increment() })
        let results = onRankThreads(2, timeout: TestTiming.scaled(60)) { rank -> RingStatistics in
            let ring = try makeRingMember(rank: rank, worldSize: 2, context: context, transport: "tcp",
                                          board: board, settings: settings)
            defer { ring.close() }
            connected.set(rank, true)
            guard rank == 0 else {
                // Stays until both connections are up (connecting waits for the peer), then is silent.
                _ = connected.waitForAll(timeout: TestTiming.scaled(30))
                return RingStatistics()
            }
            var buffer = [Float](repeating: 1, count: 100)
            #expect(throws: RingError.self) { try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) } }
            return ring.statistics
        }
        guard case let .success(statistics)? = results[0] else { Issue.record("\(String(describing: results[0]))"); return }
        #expect(statistics.stalls == 2)
        #expect(stallReports.value == 2)
    }
}

/// A TCP port on 127.0.0.1 bound by a socket that never listens: connecting to it is refused.
struct UnlistenedPort {
    let descriptor: Int32
    let port: UInt16

    init?() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { Glibc.close(fd); return nil }
        descriptor = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    func close() { _ = Glibc.close(descriptor) }
}

/// A communicator reference for hooks that run on its own thread.
final class RingBox: @unchecked Sendable {
    weak var ring: RingCommunicator?
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; count += 1; return count }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

extension SocketTests {
    /// Buckets handed to the collective thread as "backward" produces them (last tensor first):
    /// every rank ends bit-identical, matching the plain sum.
    @Test func bucketedAllReduceOnTheCollectiveThread() throws {
        let worldSize = 3
        let tensorSizes = [1000, 7, 20_000, 3, 4096, 12_345, 1]
        var offsets: [Range<Int>] = []
        var start = 0
        for size in tensorSizes { offsets.append(start..<start + size); start += size }
        let length = start
        let buckets = GradientBuckets.plan(tensorRanges: offsets.reversed(), bucketElements: 5000)
        let inputs = RingScheduleTests.inputs(worldSize: worldSize, length: length, seed: 77)
        let context = try ZmqContext()
        let board = Slots<String>(count: worldSize)
        let settings = RingSettings(pieceBytes: 8 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [Float] in
            let collectives = try CollectiveThread { () throws(RingError) -> RingCommunicator in
                try RingCommunicator(context: context, rank: rank, worldSize: worldSize, runID: 5,
                                     bindTo: "tcp://127.0.0.1:*", settings: settings)
            }
            defer { collectives.stop() }
            board.set(rank, collectives.endpoint)
            guard let endpoints = board.waitForAll(timeout: TestTiming.scaled(20)) else { throw RankTimedOut(rank: rank) }
            _ = try collectives.wait(collectives.connect(toNext: endpoints[(rank + 1) % worldSize]))
            var gradient = inputs[rank]
            try gradient.withUnsafeMutableBufferPointer { whole in
                let tickets = buckets.map { bucket in
                    collectives.allReduce(UnsafeMutableBufferPointer(rebasing: whole[bucket]), generation: 1)
                }
                for ticket in tickets { _ = try collectives.wait(ticket, timeout: TestTiming.scaled(30)) }
            }
            return gradient
        }
        guard case let .success(first)? = results[0] else { Issue.record("rank 0: \(String(describing: results[0]))"); return }
        for rank in 1..<worldSize {
            guard case let .success(buffer)? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            #expect(buffer.map(\.bitPattern) == first.map(\.bitPattern))
        }
        for index in stride(from: 0, to: length, by: 97) {
            let reference = inputs.reduce(0.0) { $0 + Double($1[index]) }
            #expect(abs(Double(first[index]) - reference) <= 1e-3 * max(abs(reference), 1))
        }
    }
}

extension SocketTests {
    /// Ring traffic under CURVE: with the right neighbour key the collective completes; with a
    /// wrong one the handshake fails and the connection to the next rank fails in time, named.
    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"), arguments: [true, false])
    func curveRing(rightKeys: Bool) throws {
        let worldSize = 2
        let keys = try (0..<worldSize).map { _ in try CurveKeyPair.generate() }
        let stranger = try CurveKeyPair.generate()
        let context = try ZmqContext()
        let board = Slots<String>(count: worldSize)
        let settings = keys.map {
            RingSettings(pieceBytes: 8 << 10, silenceDeadline: TestTiming.scaled(rightKeys ? 10 : 1), curveKeys: $0,
                         connectDeadline: TestTiming.scaled(rightKeys ? 20 : 1))
        }
        let results = onRankThreads(worldSize, timeout: TestTiming.scaled(60)) { rank -> [Float] in
            let ring = try RingCommunicator(context: context, rank: rank, worldSize: worldSize, runID: 3,
                                            bindTo: "tcp://127.0.0.1:*", settings: settings[rank])
            defer { ring.close() }
            board.set(rank, ring.endpoint)
            guard let endpoints = board.waitForAll(timeout: TestTiming.scaled(20)) else { throw RankTimedOut(rank: rank) }
            let next = (rank + 1) % worldSize
            try ring.connect(toNext: endpoints[next], curvePublicKey: rightKeys ? keys[next].publicKey : stranger.publicKey)
            var buffer = [Float](repeating: Float(rank + 1), count: 5000)
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
            return buffer
        }
        for rank in 0..<worldSize {
            switch results[rank] {
            case let .success(buffer)?:
                #expect(rightKeys, "rank \(rank) completed with a wrong server key")
                #expect(buffer.allSatisfy { $0 == 3 })
            case let .failure(error)?:
                #expect(!rightKeys, "rank \(rank): \(error)")
                // The handshake never succeeds, so the connection to the next rank never comes up.
                guard case let .unreachable(peer, _, _)? = error as? RingError else { Issue.record("rank \(rank): \(error)"); continue }
                #expect(peer == (rank + 1) % worldSize && "\(error)".contains("no connection to rank"), "rank \(rank): \(error)")
            case nil: Issue.record("rank \(rank) did not finish in time")
            }
        }
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func curveKeysAreZ85AndBadKeysAreTypedErrors() throws {
        let keys = try CurveKeyPair.generate()
        #expect(keys.publicKey.utf8.count == 40 && keys.secretKey.utf8.count == 40)
        let context = try ZmqContext()
        let socket = try ZmqSocket(context, type: .push)
        #expect(throws: ZmqError.self) { try socket.enableCurveClient(keys, serverPublicKey: "short") }
    }
}
