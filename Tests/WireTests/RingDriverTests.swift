import Foundation
import Testing
@testable import Wire

/// The collective driver without sockets: rank 1 of two runs `RingDriver` over a `ScriptedLink`
/// whose rank 0 is simulated, with stray messages slipped between the real pieces.
@Suite struct RingDriverTests {
    /// 16 elements per piece: a chunk of 100 elements is 7 pieces, so stray messages land
    /// between pieces of both phases.
    static let pieceElements = 16
    static let length = 200

    static func settings(reportInterval: Duration = .seconds(3600), reports: DropReports? = nil,
                         silence: Duration = TestTiming.scaled(10)) -> RingSettings {
        var onDrops: (@Sendable (RingDropReport) -> Void)?
        if let reports { onDrops = { reports.add($0) } }
        return RingSettings(pieceBytes: pieceElements * 4, silenceDeadline: silence, onDrops: onDrops,
                            dropReportInterval: reportInterval)
    }

    /// Small integers: sums are exact in any order.
    static func values(seed: Int) -> [Float] {
        (0..<length).map { Float(($0 * 7 + seed * 13) % 41 - 20) }
    }

    /// The header rank 1 expects first in a collective #`sequence`: step 0, piece 0, from rank 0.
    static func firstExpectedHeader(sequence: UInt64) -> RingChunkHeader {
        RingChunkHeader(collective: .allReduce, sequence: sequence, sourceRank: 0, ringStep: 0, piece: 0,
                        elementOffset: 0, elementCount: UInt32(pieceElements))
    }

    /// One all-reduce of rank 1 against a simulated rank 0 numbering its collective `identity`.
    /// Returns both ranks' buffers.
    static func allReduce(_ link: ScriptedLink, identity: CollectiveIdentity, seed: Int) throws -> (mine: [Float], peer: [Float]) {
        let peer = SimulatedPeer(allReduceOf: values(seed: seed), identity: identity, pieceElements: pieceElements)
        link.start(peer)
        var mine = values(seed: seed + 1)
        try mine.withUnsafeMutableBufferPointer { try RingDriver.allReduce(link, $0, generation: identity.generation) }
        if let failure = link.peerFailure { throw failure }
        #expect(peer.machine.isComplete)
        return (mine, peer.buffer)
    }

    static func plainSum(seed: Int) -> [Float] {
        zip(values(seed: seed), values(seed: seed + 1)).map { $0 + $1 }
    }

    /// Messages that are not pieces of the collective in progress are dropped and counted, by
    /// kind, never applied (each stray piece below carries 1000s where the real one goes, so
    /// applying it would show in the sum); the all-reduce completes. The drop hook gets the
    /// first drop at once and, with a long interval, nothing more; with none, every drop.
    @Test(arguments: [false, true])
    func strayMessagesAreDroppedCountedAndReportedWhileTheAllReduceCompletes(reportsEveryDrop: Bool) throws {
        let reports = DropReports()
        let link = ScriptedLink(runID: 0xA, settings: Self.settings(reportInterval: reportsEveryDrop ? .zero : .seconds(3600),
                                                                    reports: reports))
        let first = try Self.allReduce(link, identity: CollectiveIdentity(runID: 0xA, generation: 3, sequence: 0), seed: 1)
        #expect(first.mine == Self.plainSum(seed: 1))
        #expect(link.statistics.messagesDropped == 0)

        let poison = [Float](repeating: 1000, count: Self.pieceElements)
        link.interleaved = [
            .malformed(reason: "bad magic 0x0"),
            // What the previous collective's pieces look like, and the previous generation's.
            ScriptedLink.piece(run: 0xA, generation: 3, header: Self.firstExpectedHeader(sequence: 0), values: poison),
            ScriptedLink.piece(run: 0xA, generation: 2, header: Self.firstExpectedHeader(sequence: 1), values: poison),
            // Another run with the same generation and collective numbers.
            ScriptedLink.piece(run: 0xB, generation: 3, header: Self.firstExpectedHeader(sequence: 1), values: poison),
            // The expected header, but a data part that does not hold its elements.
            ScriptedLink.piece(run: 0xA, generation: 3, header: Self.firstExpectedHeader(sequence: 1), values: poison,
                               dataBytes: Self.pieceElements * 4 - 8),
            .malformed(reason: "a message of 3 parts"),
        ]
        let second = try Self.allReduce(link, identity: CollectiveIdentity(runID: 0xA, generation: 3, sequence: 1), seed: 5)
        #expect(link.interleaved.isEmpty, "every stray message was slipped in")
        #expect(link.inbox.isEmpty)
        #expect(second.mine == Self.plainSum(seed: 5))
        #expect(second.peer == Self.plainSum(seed: 5))
        #expect(link.statistics.piecesDropped == 2)
        #expect(link.statistics.foreignFramesDropped == 1)
        #expect(link.statistics.malformedMessagesDropped == 3)
        #expect(link.statistics.piecesReceived == 2 * RingPlan.allReduce(RingSchedule(rank: 1, worldSize: 2, elementCount: Self.length,
                                                                                       pieceElements: Self.pieceElements)).receives.count)
        #expect(!link.abandoned)
        if reportsEveryDrop {
            #expect(reports.all.count == 6)
            #expect(reports.all.allSatisfy { $0.total == 1 && $0.endpoint == link.endpoint })
            #expect(reports.all.last?.lastReason == "a message of 3 parts")
        } else {
            #expect(reports.all == [RingDropReport(malformed: 1, lastReason: "bad magic 0x0", endpoint: link.endpoint)])
        }
    }

    /// The chaos case: a rank that ran many collectives in generation 1 of one run is placed in
    /// generation 1 of a new run (a restarted coordinator) beside a rank that has just started.
    /// After the reform its collectives are numbered from #0 again, and the old incarnation's
    /// next piece (same generation number, collective #69) is dropped as another run's.
    @Test func aReformUnderANewRunNumbersCollectivesFromZero() throws {
        let link = ScriptedLink(runID: 0xA, settings: Self.settings())
        for sequence in 0..<69 {
            let result = try Self.allReduce(link, identity: CollectiveIdentity(runID: 0xA, generation: 1, sequence: UInt64(sequence)),
                                            seed: sequence)
            #expect(result.mine == Self.plainSum(seed: sequence))
        }
        link.core.numbering.reform(runID: 0xB)
        link.interleaved = [ScriptedLink.piece(run: 0xA, generation: 1, header: Self.firstExpectedHeader(sequence: 69),
                                               values: [Float](repeating: 1000, count: Self.pieceElements))]
        let fresh = try Self.allReduce(link, identity: CollectiveIdentity(runID: 0xB, generation: 1, sequence: 0), seed: 100)
        #expect(fresh.mine == Self.plainSum(seed: 100))
        #expect(link.statistics.foreignFramesDropped == 1)
        #expect(link.statistics.piecesDropped == 0)
    }

    @Test func numberingRestartsOnEveryReformAndEveryNewGeneration() {
        var numbering = CollectiveNumbering(runID: 0xA)
        for expected in 0..<69 { #expect(numbering.next(generation: 1) == CollectiveIdentity(runID: 0xA, generation: 1, sequence: UInt64(expected))) }
        numbering.reform(runID: 0xB)
        #expect(numbering.next(generation: 1) == CollectiveIdentity(runID: 0xB, generation: 1, sequence: 0))
        #expect(numbering.next(generation: 1) == CollectiveIdentity(runID: 0xB, generation: 1, sequence: 1))
        #expect(numbering.next(generation: 2) == CollectiveIdentity(runID: 0xB, generation: 2, sequence: 0))
        // The same run placed anew in the same generation number starts from #0 as well.
        numbering.reform(runID: 0xB)
        #expect(numbering.next(generation: 2) == CollectiveIdentity(runID: 0xB, generation: 2, sequence: 0))
    }

    @Test func standingOfAPieceAgainstTheCollectiveInProgress() {
        let current = CollectiveIdentity(runID: 0xB, generation: 4, sequence: 2)
        #expect(PieceStanding(run: 0xB, generation: 4, sequence: 2, current: current) == .current)
        #expect(PieceStanding(run: 0xB, generation: 4, sequence: 3, current: current) == .current)
        #expect(PieceStanding(run: 0xB, generation: 4, sequence: 1, current: current) == .stale)
        #expect(PieceStanding(run: 0xB, generation: 3, sequence: 9, current: current) == .stale)
        #expect(PieceStanding(run: 0xB, generation: 5, sequence: 0, current: current) == .newerGeneration)
        for (generation, sequence) in [(4, 2), (3, 0), (5, 0), (4, 70)] as [(UInt64, UInt64)] {
            #expect(PieceStanding(run: 0xA, generation: generation, sequence: sequence, current: current) == .foreignRun)
        }
    }

    /// A piece of a newer generation of this run: this rank is behind. The collective fails
    /// naming the sender, and the piece is kept for that generation.
    @Test func aPieceOfANewerGenerationFailsTheCollectiveAndIsKept() {
        let link = ScriptedLink(runID: 0xA, settings: Self.settings())
        link.interleaved = [ScriptedLink.piece(run: 0xA, generation: 4, header: Self.firstExpectedHeader(sequence: 0),
                                               values: Self.values(seed: 0).prefix(Self.pieceElements).map { $0 })]
        #expect(throws: RingError.newerGeneration(rank: 0, found: 4, current: 3)) {
            _ = try Self.allReduce(link, identity: CollectiveIdentity(runID: 0xA, generation: 3, sequence: 0), seed: 0)
        }
        #expect(link.kept.count == 1 && link.kept.first?.generation == 4)
        #expect(link.abandoned)
        #expect(link.statistics.messagesDropped == 0)
    }

    /// A piece of this run, generation and collective that does not fit the plan comes from a
    /// rank that disagrees on the schedule: an error naming it, not a drop (waiting would wait
    /// on a piece that never comes).
    @Test func aPieceOfThisCollectiveThatDoesNotFitThePlanFailsIt() {
        let link = ScriptedLink(runID: 0xA, settings: Self.settings())
        var header = Self.firstExpectedHeader(sequence: 0)
        header.ringStep = 1
        link.interleaved = [ScriptedLink.piece(run: 0xA, generation: 3, header: header,
                                               values: [Float](repeating: 0, count: Self.pieceElements))]
        do {
            _ = try Self.allReduce(link, identity: CollectiveIdentity(runID: 0xA, generation: 3, sequence: 0), seed: 0)
            Issue.record("the collective completed")
        } catch let RingError.unexpectedPiece(rank, _, found) {
            #expect(rank == 0)
            #expect(found.contains("step 1"))
        } catch {
            Issue.record("\(error)")
        }
        #expect(link.abandoned)
        #expect(link.statistics.messagesDropped == 0)
    }

    /// Junk that never stops does not hide a silent neighbour: drops are not progress, so the
    /// silence deadline still ends the wait with the usual error.
    @Test func aFloodOfJunkDoesNotHideASilentNeighbour() {
        let link = FloodingLink(runID: 0xA, settings: Self.settings(silence: TestTiming.scaled(0.2)))
        var buffer = Self.values(seed: 0)
        do {
            try buffer.withUnsafeMutableBufferPointer { try RingDriver.allReduce(link, $0, generation: 1) }
            Issue.record("the collective completed")
        } catch let RingError.peerSilent(rank, _, _, step, piece) {
            #expect(rank == 0 && step == 0 && piece == 0)
        } catch {
            Issue.record("\(error)")
        }
        #expect(link.statistics.malformedMessagesDropped > 0)
    }

    /// The first drop is reported at once; later ones wait until `interval` has passed since
    /// the last report, then go out together. Instants are given, not read from a clock.
    @Test func dropReportsComeAtMostOncePerInterval() {
        var reporter = RingDropReporter(interval: .seconds(10))
        let start = ContinuousClock.now
        #expect(reporter.record(.malformed, reason: "first", endpoint: "e", at: start) ==
                RingDropReport(malformed: 1, lastReason: "first", endpoint: "e"))
        #expect(reporter.record(.foreignRun, reason: "second", endpoint: "e", at: start + .seconds(1)) == nil)
        #expect(reporter.record(.stale, reason: "third", endpoint: "e", at: start + .seconds(2)) == nil)
        #expect(reporter.flush(at: start + .seconds(9)) == nil)
        #expect(reporter.flush(at: start + .seconds(10)) ==
                RingDropReport(stale: 1, foreignRun: 1, lastReason: "third", endpoint: "e"))
        #expect(!reporter.hasPending)
        #expect(reporter.flush(at: start + .seconds(30)) == nil)
        #expect(reporter.record(.malformed, reason: "fourth", endpoint: "e", at: start + .seconds(15)) == nil)
        #expect(reporter.record(.malformed, reason: "fifth", endpoint: "e", at: start + .seconds(20)) ==
                RingDropReport(malformed: 2, lastReason: "fifth", endpoint: "e"))
    }
}

/// A link whose every receive is junk and whose neighbour never sends a piece.
final class FloodingLink: RingLink {
    let rank = 1
    let worldSize = 2
    let endpoint = "memory://flooded"
    let nextEndpoint = "memory://rank-0"
    let settings: RingSettings
    var core: RingCore
    var spinBeforeBlocking: Duration { .zero }

    init(runID: UInt64, settings: RingSettings) {
        self.settings = settings
        core = RingCore(runID: runID, settings: settings)
    }

    var statistics: RingStatistics { core.statistics }

    func prepareCollective() throws(RingError) {}
    func beginPass() {}
    func post(_ send: RingMachine.Send, identity: CollectiveIdentity,
              from buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) -> Bool { true }
    func receive() throws(RingError) -> RingDelivery<Void>? { .malformed(reason: "junk") }
    func release(_ arrival: RingArrival<Void>, keep: Bool) {}
    func isSending(from range: Range<Int>?) -> Bool { false }
    func forwardingDestination(for send: RingMachine.Send, identity: CollectiveIdentity) -> UnsafeMutablePointer<Float>? { nil }
    func publishForwarded(_ send: RingMachine.Send) {}
    func checkNeighbours(awaiting piece: RingReceive?, hasUnsent: Bool, waited: Duration) throws(RingError) {}
    func block(for reason: RingWaitReason, limit: Duration) -> Bool { true }
    func abandon() throws(RingError) {}
}
