import Foundation
@testable import Wire

/// Bytes a scripted message owns, so an arrival's data stays valid until it is released.
final class OwnedBytes {
    let raw: UnsafeMutableRawBufferPointer

    init(_ source: UnsafeRawBufferPointer) {
        raw = .allocate(byteCount: max(source.count, 1), alignment: 64)
        if let base = source.baseAddress, !source.isEmpty { raw.baseAddress?.copyMemory(from: base, byteCount: source.count) }
        count = source.count
    }

    let count: Int
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: raw.baseAddress, count: count) }

    deinit { raw.deallocate() }
}

/// Rank 0 of a ring of two, simulated in the test's thread: it owns a buffer and a machine,
/// takes what rank 1 posts, and answers with its own pieces, stamped with `identity`.
final class SimulatedPeer {
    var buffer: [Float]
    var machine: RingMachine
    let identity: CollectiveIdentity

    init(allReduceOf buffer: [Float], identity: CollectiveIdentity, pieceElements: Int) {
        self.buffer = buffer
        self.identity = identity
        let schedule = RingSchedule(rank: 0, worldSize: 2, elementCount: buffer.count, pieceElements: pieceElements)
        machine = RingMachine(plan: .allReduce(schedule), rank: 0, worldSize: 2, generation: identity.generation,
                              sequence: identity.sequence, checksumsData: false)
    }

    func initialSends() -> [RingDelivery<OwnedBytes>] {
        buffer.withUnsafeBufferPointer { machine.initialSends(buffer: $0) }.map(message)
    }

    /// Applies a piece from rank 1; returns the piece it forwards, if any.
    func take(_ header: RingChunkHeader, generation: UInt64, data: UnsafeRawBufferPointer) throws -> RingDelivery<OwnedBytes>? {
        let outcome = try buffer.withUnsafeMutableBufferPointer { try machine.accept(generation: generation, header: header, data: data, buffer: $0) }
        guard case let .applied(forward?) = outcome else { return nil }
        return message(forward)
    }

    private func message(_ send: RingMachine.Send) -> RingDelivery<OwnedBytes> {
        let bytes = buffer.withUnsafeBytes { OwnedBytes(UnsafeRawBufferPointer(rebasing: $0[(send.range.lowerBound * 4)..<(send.range.upperBound * 4)])) }
        return .piece(RingArrival(runID: identity.runID, generation: identity.generation, header: send.header,
                                  data: bytes.bytes, token: bytes))
    }
}

/// Rank 1 of a ring of two whose rank 0 is a `SimulatedPeer`: a `RingLink` without sockets or
/// threads, so `RingDriver`'s rules (identity, drops, reports, errors) are tested on their own.
/// Scripted messages (`interleaved`) go into the inbox one before each of the peer's pieces.
final class ScriptedLink: RingLink {
    let rank = 1
    let worldSize = 2
    let endpoint = "memory://rank-1"
    let nextEndpoint = "memory://rank-0"
    let settings: RingSettings
    var core: RingCore
    var spinBeforeBlocking: Duration { .zero }

    var peer: SimulatedPeer?
    /// What rank 1 will receive, in order.
    var inbox: [RingDelivery<OwnedBytes>] = []
    /// Messages slipped in, one before each piece of the peer.
    var interleaved: [RingDelivery<OwnedBytes>] = []
    /// Pieces the driver kept for a later generation.
    var kept: [RingArrival<OwnedBytes>] = []
    private(set) var abandoned = false
    /// A failure of the simulated peer (what rank 1 sent did not fit its plan).
    private(set) var peerFailure: (any Error)?

    init(runID: UInt64, settings: RingSettings) {
        self.settings = settings
        core = RingCore(runID: runID, settings: settings)
    }

    var statistics: RingStatistics { core.statistics }

    /// Starts a collective's exchange: the peer's first pieces wait in the inbox.
    func start(_ peer: SimulatedPeer) {
        self.peer = peer
        for piece in peer.initialSends() { deliver(piece) }
    }

    private func deliver(_ piece: RingDelivery<OwnedBytes>) {
        if !interleaved.isEmpty { inbox.append(interleaved.removeFirst()) }
        inbox.append(piece)
    }

    func prepareCollective() throws(RingError) {}
    func beginPass() {}

    func post(_ send: RingMachine.Send, identity: CollectiveIdentity,
              from buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) -> Bool {
        let data = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[send.range]))
        do {
            if let forward = try peer?.take(send.header, generation: identity.generation, data: data) { deliver(forward) }
        } catch {
            peerFailure = error
        }
        return true
    }

    func receive() throws(RingError) -> RingDelivery<OwnedBytes>? {
        inbox.isEmpty ? nil : inbox.removeFirst()
    }

    func release(_ arrival: RingArrival<OwnedBytes>, keep: Bool) {
        if keep { kept.append(arrival) }
    }

    func isSending(from range: Range<Int>?) -> Bool { false }
    func forwardingDestination(for send: RingMachine.Send, identity: CollectiveIdentity) -> UnsafeMutablePointer<Float>? { nil }
    func publishForwarded(_ send: RingMachine.Send) {}
    func checkNeighbours(awaiting piece: RingReceive?, hasUnsent: Bool, waited: Duration) throws(RingError) {}
    func block(for reason: RingWaitReason, limit: Duration) -> Bool { true }

    func abandon() throws(RingError) {
        abandoned = true
    }

    /// A message rank 1 did not expect: a ring piece with these identity fields and header,
    /// carrying `values` (or `dataBytes` bytes of them when given: a mismatched data part).
    static func piece(run: UInt64, generation: UInt64, header: RingChunkHeader, values: [Float],
                      dataBytes: Int? = nil) -> RingDelivery<OwnedBytes> {
        let bytes = values.withUnsafeBytes { OwnedBytes(UnsafeRawBufferPointer(rebasing: $0.prefix(dataBytes ?? $0.count))) }
        return .piece(RingArrival(runID: run, generation: generation, header: header, data: bytes.bytes, token: bytes))
    }
}

/// Reports handed to `RingSettings.onDrops`, gathered across threads.
final class DropReports: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [RingDropReport] = []

    func add(_ report: RingDropReport) {
        lock.lock()
        reports.append(report)
        lock.unlock()
    }

    var all: [RingDropReport] {
        lock.lock()
        defer { lock.unlock() }
        return reports
    }

    var totalDropped: Int { all.reduce(0) { $0 + $1.total } }
}
