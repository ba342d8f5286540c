import Foundation
import Testing
@testable import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The latest statistics a ring published from its own thread (from its stall hook), for
/// another thread to wait on.
final class StatisticsBoard: @unchecked Sendable {
    private let condition = NSCondition()
    private var latest = RingStatistics()

    func publish(_ statistics: RingStatistics) {
        condition.lock()
        latest = statistics
        condition.broadcast()
        condition.unlock()
    }

    /// The statistics once `holds` is true of them; nil if it is not by `timeout`.
    func wait(timeout: Duration, until holds: (RingStatistics) -> Bool) -> RingStatistics? {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        while !holds(latest) {
            if !condition.wait(until: deadline) { return holds(latest) ? latest : nil }
        }
        return latest
    }
}

/// A TCP client that knows nothing of ZeroMQ: writes bytes to a port, then reads until the
/// server closes (or `drainFor` passes), so nothing it wrote is lost to a reset.
enum RawTCPClient {
    struct Failure: Error { var what: String }

    static func send(_ bytes: [UInt8], to endpoint: String, drainFor: Duration) throws {
        guard endpoint.hasPrefix("tcp://127.0.0.1:"), let port = UInt16(endpoint.split(separator: ":").last ?? "") else {
            throw Failure(what: "not a loopback tcp endpoint: \(endpoint)")
        }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(what: "socket: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(what: "connect to \(endpoint): errno \(errno)") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw Failure(what: "write: errno \(errno)") }
            offset += written
        }
        shutdown(descriptor, Int32(SHUT_WR))
        let deadline = ContinuousClock.now + drainFor
        var scratch = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var item = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&item, 1, 100) >= 0 else { return }
            if item.revents == 0 { continue }
            if scratch.withUnsafeMutableBytes({ read(descriptor, $0.baseAddress, $0.count) }) <= 0 { return }
        }
    }

    /// `count` bytes of a seeded generator.
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    /// About `size` bytes in the framing libzmq applies to a peer that opens without ZeroMQ's
    /// greeting (ZMTP/1.0: a length byte counting the flags byte, a flags byte whose bit 0 says
    /// "more parts follow", the body), with random bodies and random part counts: the shape
    /// random bytes take once libzmq has read them. The first frame is the peer's identity,
    /// which the socket consumes. Returns the bytes and the number of messages they carry.
    static func zmtp1Stream(size: Int, seed: UInt64) -> (bytes: [UInt8], messages: Int) {
        var generator = SplitMix64(seed: seed)
        var bytes: [UInt8] = [1, 0]
        var messages = 0
        var openMessage = false
        while bytes.count < size - 300 || openMessage {
            let length = 1 + Int(generator.next() % 200)
            let more = bytes.count < size - 300 && generator.next() % 3 == 0
            bytes += [UInt8(length + 1), more ? 1 : 0]
            bytes += (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            openMessage = more
            if !more { messages += 1 }
        }
        return (bytes, messages)
    }
}

extension SocketTests {
    /// Settings of the rank that is written to: it waits for rank 0 in short slices (stalls,
    /// bounded by `giveUp`), publishing its statistics after each, and reports every drop.
    static func watchedSettings(box: RingBox, board: StatisticsBoard, reports: DropReports,
                                giveUp: ContinuousClock.Instant) -> RingSettings {
        RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(0.05),
                     isPeerAlive: { _ in ContinuousClock.now < giveUp },
                     onStall: { _, _ in if let statistics = box.ring?.statistics { board.publish(statistics) } },
                     onDrops: { reports.add($0) }, dropReportInterval: .zero)
    }

    /// The reproduction: 4 KiB of random bytes written by a plain TCP client to a rank's ring
    /// port while it waits in an all-reduce. libzmq reads them as ZMTP/1.0 frames, so some
    /// arrive as messages (with this seed, several); each is dropped and counted, none blames
    /// a rank, and the all-reduce completes with the right sums once the real peer sends.
    @Test func randomBytesFromAPlainTCPClientNeverBreakTheAllReduce() throws {
        let context = try ZmqContext()
        let endpoints = Slots<String>(count: 2)
        let box = RingBox()
        let board = StatisticsBoard()
        let reports = DropReports()
        let giveUp = ContinuousClock.now + TestTiming.scaled(40)
        let watched = Self.watchedSettings(box: box, board: board, reports: reports, giveUp: giveUp)
        let plain = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        let results = onRankThreads(2, timeout: TestTiming.scaled(60)) { rank -> ([Float], RingStatistics) in
            let ring = try makeRingMember(rank: rank, worldSize: 2, context: context, transport: "tcp", board: endpoints,
                                          settings: rank == 1 ? watched : plain)
            defer { ring.close() }
            if rank == 1 {
                box.ring = ring
            } else {
                try RawTCPClient.send(RawTCPClient.randomBytes(4096, seed: 1), to: ring.nextEndpoint, drainFor: TestTiming.scaled(5))
                guard board.wait(timeout: TestTiming.scaled(20), until: { $0.malformedMessagesDropped >= 1 }) != nil else {
                    throw RankTimedOut(rank: 1)
                }
            }
            var buffer = [Float](repeating: Float(rank + 1), count: 40_000)
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
            return (buffer, ring.statistics)
        }
        for rank in 0..<2 {
            guard case let .success((buffer, _))? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            #expect(buffer.allSatisfy { $0 == 3 }, "rank \(rank)")
        }
        guard case let .success((_, statistics))? = results[1] else { return }
        #expect(statistics.malformedMessagesDropped >= 1)
        #expect(statistics.foreignFramesDropped == 0 && statistics.piecesDropped == 0)
        #expect(reports.totalDropped == statistics.messagesDropped, "every drop reported (interval zero)")
        #expect(reports.all.allSatisfy { $0.endpoint.hasPrefix("tcp://127.0.0.1:") })
    }

    /// Exact counts: a plain TCP client's ZMTP/1.0 stream of random messages, a ZeroMQ PUSH
    /// socket's random two-part messages, a well-formed piece of another run and one of an
    /// older generation (both with the header and size rank 1 expects first, and data that
    /// would spoil the sum). Every one is dropped and counted by kind while rank 1 waits; then
    /// the all-reduce completes with the right sums.
    @Test func junkAndForeignFramesFromUnknownPeersAreDroppedAndCounted() throws {
        let context = try ZmqContext()
        let endpoints = Slots<String>(count: 2)
        let box = RingBox()
        let board = StatisticsBoard()
        let reports = DropReports()
        let giveUp = ContinuousClock.now + TestTiming.scaled(40)
        let watched = Self.watchedSettings(box: box, board: board, reports: reports, giveUp: giveUp)
        let plain = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(10))
        let stream = RawTCPClient.zmtp1Stream(size: 4096, seed: 2)
        let randomMessages = 5
        let runID: UInt64 = 0xC0FFEE
        let results = onRankThreads(2, timeout: TestTiming.scaled(60)) { rank -> ([Float], RingStatistics) in
            let ring = try makeRingMember(rank: rank, worldSize: 2, context: context, transport: "tcp", board: endpoints,
                                          runID: runID, settings: rank == 1 ? watched : plain)
            defer { ring.close() }
            if rank == 1 {
                box.ring = ring
            } else {
                try RawTCPClient.send(stream.bytes, to: ring.nextEndpoint, drainFor: TestTiming.scaled(5))
                let deadline = ContinuousClock.now + TestTiming.scaled(5)
                let intruder = try ZmqSocket(context, type: .push, linger: TestTiming.scaled(5))
                defer { intruder.close() }
                try intruder.connect(ring.nextEndpoint)
                var generator = SplitMix64(seed: 3)
                for _ in 0..<randomMessages {
                    let parts = (0..<2).map { _ in
                        (0..<(1 + Int(generator.next() % 300))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                    }
                    try intruder.send(parts: parts, deadline: deadline)
                }
                let expectedFirst = RingChunkHeader(collective: .allReduce, sequence: 0, sourceRank: 0, ringStep: 0, piece: 0,
                                                    elementOffset: 0, elementCount: 1024)
                let poison = [Float](repeating: 1000, count: 1024).withUnsafeBytes { Array($0) }
                try intruder.send(parts: [Envelope(generation: 2, runID: 0xBAD, message: .ringChunk(expectedFirst)).encoded(), poison],
                                  deadline: deadline)
                try intruder.send(parts: [Envelope(generation: 1, runID: runID, message: .ringChunk(expectedFirst)).encoded(), poison],
                                  deadline: deadline)
                let seen = board.wait(timeout: TestTiming.scaled(20)) {
                    $0.malformedMessagesDropped >= stream.messages + randomMessages && $0.foreignFramesDropped >= 1 && $0.piecesDropped >= 1
                }
                guard seen != nil else { throw RankTimedOut(rank: 1) }
            }
            var buffer = [Float](repeating: Float(rank + 1), count: 40_000)
            try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 2) }
            return (buffer, ring.statistics)
        }
        for rank in 0..<2 {
            guard case let .success((buffer, _))? = results[rank] else { Issue.record("rank \(rank): \(String(describing: results[rank]))"); continue }
            #expect(buffer.allSatisfy { $0 == 3 }, "rank \(rank)")
        }
        guard case let .success((_, statistics))? = results[1] else { return }
        #expect(stream.messages > 10)
        #expect(statistics.malformedMessagesDropped == stream.messages + randomMessages)
        #expect(statistics.foreignFramesDropped == 1)
        #expect(statistics.piecesDropped == 1)
        #expect(reports.totalDropped == statistics.messagesDropped)
    }
}
