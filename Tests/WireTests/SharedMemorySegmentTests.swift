import Foundation
import Testing
@testable import Wire

/// Rendezvous and cleanup of the shared-memory ring's segments, and bad input from a peer.
@Suite(.serialized) struct SharedMemorySegmentTests {
    @Test func endpointNamesAreDerivedAndValidated() {
        let endpoint = SharedMemoryEndpoint.endpoint(runID: 0xAB, generation: 3, rank: 2)
        #expect(endpoint == "shm://scvae-ab-g3-r2")
        #expect(SharedMemoryEndpoint.name(of: endpoint) == "scvae-ab-g3-r2")
        for bad in ["tcp://127.0.0.1:5", "shm://", "shm://a/b", "shm://..", "shm://x y", "shm://" + String(repeating: "a", count: 201)] {
            #expect(SharedMemoryEndpoint.name(of: bad) == nil, "\(bad)")
        }
    }

    /// The inbox is private to this user (0600) and its name disappears as soon as the previous
    /// rank has mapped it: a process killed after that leaves nothing in /dev/shm.
    @Test func inboxNameIsRemovedOnceThePreviousRankAttached() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(5))
        let zero = try SharedMemoryRing(rank: 0, worldSize: 2, runID: runID, bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 0),
                                        settings: settings)
        let one = try SharedMemoryRing(rank: 1, worldSize: 2, runID: runID, bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 1),
                                       settings: settings)
        let name = try #require(SharedMemoryEndpoint.name(of: one.endpoint))
        let attributes = try FileManager.default.attributesOfItem(atPath: "/dev/shm/\(name)")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(SharedMemoryHarness.segmentExists(one.endpoint))
        try zero.connect(toNext: one.endpoint)
        #expect(!SharedMemoryHarness.segmentExists(one.endpoint))
        // Rank 0's inbox was never attached to: closing removes its name.
        #expect(SharedMemoryHarness.segmentExists(zero.endpoint))
        zero.close()
        one.close()
        #expect(!SharedMemoryHarness.segmentExists(zero.endpoint))
    }

    /// A segment left by a process that died before its neighbour attached is removed when the
    /// next ring starts on this host; a live process's segment is never taken over.
    @Test func staleSegmentOfADeadProcessIsRemovedAtTheNextStart() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let staleEndpoint = SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 0)
        let staleName = try #require(SharedMemoryEndpoint.name(of: staleEndpoint))
        let deadPID = try SharedMemoryHarness.deadProcessID()
        let layout = InboxLayout(slotCount: 1, pieceElements: 16)
        let leftover = try SharedMemorySegment.create(name: staleName, size: layout.totalBytes)
        _ = Inbox.format(leftover.base, layout: layout,
                         identity: Inbox.Identity(runID: runID, ownerRank: 0, worldSize: 1, ownerPID: deadPID))
        leftover.unmap()   // as if killed: the name stays
        #expect(SharedMemoryHarness.segmentExists(staleEndpoint))

        let ring = try SharedMemoryRing(rank: 0, worldSize: 1, runID: runID, bindTo: staleEndpoint)
        #expect(ring.removedStaleSegments.contains(staleName))
        #expect(SharedMemoryEndpoint.ownerPID(ofSegment: staleName) == getpid())
        #expect(throws: RingError.self) {
            _ = try SharedMemoryRing(rank: 0, worldSize: 1, runID: runID, bindTo: staleEndpoint)
        }
        ring.close()
        #expect(!SharedMemoryHarness.segmentExists(staleEndpoint))
    }

    /// Endpoints that are not shm://NAME, a segment of another run, and a next rank that never
    /// appears are typed errors naming the right rank; nothing waits past the deadline.
    @Test func badEndpointsForeignSegmentsAndAbsentPeersAreTypedErrors() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let settings = RingSettings(pieceBytes: 4 << 10, silenceDeadline: TestTiming.scaled(0.2))
        #expect(throws: RingError.self) { _ = try SharedMemoryRing(rank: 1, worldSize: 2, runID: runID, bindTo: "tcp://127.0.0.1:*") }

        let ring = try SharedMemoryRing(rank: 0, worldSize: 2, runID: runID,
                                        bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 0), settings: settings)
        defer { ring.close() }
        let foreign = try SharedMemoryRing(rank: 1, worldSize: 2, runID: runID &+ 1,
                                           bindTo: SharedMemoryEndpoint.endpoint(runID: runID &+ 1, generation: 1, rank: 1), settings: settings)
        defer { foreign.close() }
        do {
            try ring.connect(toNext: foreign.endpoint)
            Issue.record("attached to another run's segment")
        } catch let .transport(rank, .call(_, errno, text)) {
            #expect(rank == 1)
            #expect(errno == EPROTO)
            #expect(text.contains("expected run"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        do {
            try ring.connect(toNext: "shm://scvae-nobody-\(runID)")
            Issue.record("attached to a segment that does not exist")
        } catch let .transport(rank, .timedOut(_, _, seconds)) {
            #expect(rank == 1)
            #expect(seconds >= TestTiming.scaled(0.2).inSeconds)
        } catch {
            Issue.record("unexpected \(error)")
        }
        var buffer: [Float] = [1, 2]
        #expect(throws: RingError.self) { try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) } }
    }

    /// A slot whose header claims more data than the slot holds, or an unknown collective, is a
    /// typed error naming the producer; it is never read past the slot.
    @Test func malformedSlotHeadersAreTypedErrors() throws {
        let slotBytes = 256
        let slot = UnsafeMutableRawPointer.allocate(byteCount: InboxLayout.slotHeaderBytes + slotBytes, alignment: 64)
        defer { slot.deallocate() }
        let header = RingChunkHeader(collective: .allReduce, sequence: 4, sourceRank: 1, ringStep: 2, piece: 3,
                                     elementOffset: 10, elementCount: 64, dataChecksum: 0xABCD)
        let data = [Float](repeating: 2, count: 64)
        data.withUnsafeBytes { PieceSlot.write(slot, generation: 9, header: header, data: $0) }
        let piece = try PieceSlot.read(slot, slotBytes: slotBytes, from: 1)
        #expect(piece.generation == 9)
        #expect(piece.header == header)
        #expect(piece.data.count == 256)

        slot.storeBytes(of: UInt32(65), toByteOffset: 40, as: UInt32.self)
        #expect(throws: RingError.self) { _ = try PieceSlot.read(slot, slotBytes: slotBytes, from: 1) }
        slot.storeBytes(of: UInt32(64), toByteOffset: 40, as: UInt32.self)
        slot.storeBytes(of: UInt8(99), toByteOffset: 24, as: UInt8.self)
        #expect(throws: RingError.self) { _ = try PieceSlot.read(slot, slotBytes: slotBytes, from: 1) }
    }

    /// The one-pass reduce-and-forward gives the same bits as `RingMachine.apply` (the
    /// reference), in the buffer and in the forwarded copy.
    @Test(arguments: [RingPieceOperation.accumulate, .overwrite])
    func forwardingKernelMatchesTheRingMachine(operation: RingPieceOperation) {
        let inputs = RingScheduleTests.inputs(worldSize: 2, length: 1_027, seed: 3)
        var reference = inputs[0]
        reference.withUnsafeMutableBufferPointer { target in
            inputs[1].withUnsafeBufferPointer { RingMachine.apply(operation, $0, to: target) }
        }
        var target = inputs[0]
        var forwarded = [Float](repeating: .nan, count: target.count)
        target.withUnsafeMutableBufferPointer { target in
            forwarded.withUnsafeMutableBufferPointer { forward in
                inputs[1].withUnsafeBufferPointer { incoming in
                    ForwardingKernel.apply(operation, incoming: incoming.baseAddress!, target: target.baseAddress!,
                                           forward: forward.baseAddress!, count: target.count)
                }
            }
        }
        #expect(target.map(\.bitPattern) == reference.map(\.bitPattern))
        #expect(forwarded.map(\.bitPattern) == reference.map(\.bitPattern))
    }

    /// N = 1: nothing to exchange, the buffer is left as it is.
    @Test func singleRankRingLeavesTheBufferAlone() throws {
        let runID = SharedMemoryHarness.freshRunID()
        let ring = try SharedMemoryRing(rank: 0, worldSize: 1, runID: runID,
                                        bindTo: SharedMemoryEndpoint.endpoint(runID: runID, generation: 1, rank: 0))
        defer { ring.close() }
        try ring.connect(toNext: ring.endpoint)
        var buffer: [Float] = [1, -2, 3]
        try buffer.withUnsafeMutableBufferPointer { try ring.allReduce($0, generation: 1) }
        try buffer.withUnsafeMutableBufferPointer { try ring.broadcast($0, root: 0, generation: 1) }
        #expect(buffer == [1, -2, 3])
    }
}
