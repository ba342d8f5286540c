import Testing
@testable import Wire

@Suite struct TensorAssemblerTests {
    static func tensorBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    @Test func interleavedChunksOfSeveralTensorsReassembleThroughTheWire() throws {
        let a = Self.tensorBytes(4 * 300, seed: 1)
        let b = Self.tensorBytes(4 * 2, seed: 2)
        let empty: [UInt8] = []
        let chunksA = TensorChunk.chunks(transfer: .parameters, step: 7, tensorIndex: 0, tensorCount: 3, name: "enc.w",
                                         dtype: .float32, shape: [30, 10], bytes: a, maxChunkBytes: 500)
        let chunksB = TensorChunk.chunks(transfer: .parameters, step: 7, tensorIndex: 1, tensorCount: 3, name: "enc.b",
                                         dtype: .float32, shape: [2], bytes: b, maxChunkBytes: 500)
        let chunksC = TensorChunk.chunks(transfer: .parameters, step: 7, tensorIndex: 2, tensorCount: 3, name: "none",
                                         dtype: .float32, shape: [0, 5], bytes: empty)
        #expect(chunksA.count == 3 && chunksC.count == 1)
        var assembler = TensorAssembler()
        var tensors: [TensorAssembler.Tensor] = []
        for chunk in [chunksA[0], chunksB[0], chunksA[1], chunksC[0], chunksA[2]] {
            // Through the frame codec, as on the wire.
            let frame = Envelope(generation: 1, runID: 1, message: .tensorChunk(chunk)).encoded()
            guard case let .tensorChunk(decoded) = try Envelope.decode(frame).message else { Issue.record("kind"); return }
            if let tensor = try assembler.add(decoded) { tensors.append(tensor) }
        }
        #expect(assembler.isComplete)
        #expect(tensors.map(\.name) == ["enc.b", "none", "enc.w"])
        #expect(tensors.first { $0.name == "enc.w" }?.bytes == a)
        #expect(tensors.first { $0.name == "enc.b" }?.shape == [2])
    }

    @Test func refusedChunksAreTypedErrors() throws {
        let bytes = Self.tensorBytes(40, seed: 3)
        let chunks = TensorChunk.chunks(transfer: .optimizerState, step: 1, tensorIndex: 0, tensorCount: 2, name: "m.w",
                                        dtype: .float32, shape: [10], bytes: bytes, maxChunkBytes: 16)
        var assembler = TensorAssembler()
        #expect(throws: TensorAssembler.AssemblyError.outOfOrder(name: "m.w", expected: 0, found: 16)) { try assembler.add(chunks[1]) }
        #expect(try assembler.add(chunks[0]) == nil)
        var otherStep = chunks[1]; otherStep.step = 2
        #expect(throws: TensorAssembler.AssemblyError.self) { try assembler.add(otherStep) }
        var renamed = chunks[1]; renamed.name = "m.x"
        #expect(throws: TensorAssembler.AssemblyError.inconsistent(name: "m.w", index: 0, field: "name")) { try assembler.add(renamed) }
        #expect(try assembler.add(chunks[1]) == nil)
        var corrupted = chunks[2]; corrupted.bytes[0] ^= 1
        do {
            _ = try assembler.add(corrupted)
            Issue.record("corrupted tensor accepted")
        } catch {
            if case .checksum(name: "m.w", _, _) = error {} else { Issue.record("\(error)") }
        }
        #expect(try assembler.add(chunks[2])?.bytes == bytes)
        #expect(throws: TensorAssembler.AssemblyError.duplicate(name: "m.w", index: 0)) { try assembler.add(chunks[0]) }
        #expect(!assembler.isComplete)
        var small = TensorAssembler(maxTotalBytes: 10)
        #expect(throws: TensorAssembler.AssemblyError.tooLarge(name: "m.w", bytes: 40, limit: 10)) { try small.add(chunks[0]) }
    }

    /// A refused chunk must not use up the byte budget: with room for exactly one tensor, a
    /// refused first chunk (out of order, or failing its checksum) leaves room for the resend.
    @Test func refusedFirstChunksDoNotConsumeTheBudget() throws {
        let bytes = Self.tensorBytes(40, seed: 4)
        let chunks = TensorChunk.chunks(transfer: .parameters, step: 3, tensorIndex: 0, tensorCount: 1, name: "d.w",
                                        dtype: .float32, shape: [10], bytes: bytes, maxChunkBytes: 16)
        var assembler = TensorAssembler(maxTotalBytes: 40)
        #expect(throws: TensorAssembler.AssemblyError.outOfOrder(name: "d.w", expected: 0, found: 16)) { try assembler.add(chunks[1]) }
        #expect(try assembler.add(chunks[0]) == nil)
        #expect(try assembler.add(chunks[1]) == nil)
        #expect(try assembler.add(chunks[2])?.bytes == bytes)
        #expect(assembler.isComplete)

        let whole = TensorChunk.chunks(transfer: .parameters, step: 3, tensorIndex: 0, tensorCount: 1, name: "d.w",
                                       dtype: .float32, shape: [10], bytes: bytes)
        #expect(whole.count == 1)
        var corrupted = whole[0]; corrupted.bytes[5] ^= 0x40
        var single = TensorAssembler(maxTotalBytes: 40)
        do {
            _ = try single.add(corrupted)
            Issue.record("corrupted tensor accepted")
        } catch {
            if case .checksum(name: "d.w", _, _) = error {} else { Issue.record("\(error)") }
        }
        #expect(try single.add(whole[0])?.bytes == bytes)
    }

    /// The size a chunk claims is checked against the limit but not allocated up front: a
    /// small frame claiming gigabytes holds only the bytes it carries.
    @Test func claimedSizeIsCheckedButNotPreallocated() throws {
        let claimed: [UInt64] = [1 << 30]   // 4 GiB of float32
        let small = TensorChunk(transfer: .parameters, step: 1, tensorIndex: 0, tensorCount: 2, name: "huge",
                                dtype: .float32, shape: claimed, byteOffset: 0, tensorChecksum: 0, bytes: [1, 2, 3, 4])
        var limited = TensorAssembler(maxTotalBytes: 1 << 20)
        #expect(throws: TensorAssembler.AssemblyError.tooLarge(name: "huge", bytes: 4 << 30, limit: 1 << 20)) {
            try limited.add(small)
        }
        #expect(limited.heldCapacity == 0)
        // The refusal left the budget untouched: a tensor of the whole limit still fits.
        let fits = TensorChunk.chunks(transfer: .parameters, step: 1, tensorIndex: 1, tensorCount: 2, name: "fits",
                                      dtype: .uint8, shape: [1 << 20], bytes: [UInt8](repeating: 9, count: 1 << 20),
                                      maxChunkBytes: 1 << 18)
        for chunk in fits.dropLast() { #expect(try limited.add(chunk) == nil) }
        #expect(limited.heldCapacity < 2 << 20)
        #expect(try limited.add(fits[fits.count - 1])?.bytes.count == 1 << 20)
        #expect(limited.heldCapacity == 0)

        // Within the default 16 GiB limit the claim is accepted, and only its 4 bytes are held.
        var roomy = TensorAssembler()
        #expect(try roomy.add(small) == nil)
        #expect(roomy.heldCapacity < 1 << 16)
    }
}
