#if canImport(Glibc)
/// One slot of an inbox: the piece's generation and `RingChunkHeader` fields in the first 64
/// bytes, its float32 data after them.
///
///     0 generation  8 sequence  16 elementOffset  24 collective (UInt8)
///    25 hasChecksum (UInt8)  28 sourceRank  32 ringStep  36 piece  40 elementCount  44 dataChecksum
enum PieceSlot {
    /// Writes a piece of `generation` into `slot`: the header, then `data` (at most the slot's bytes).
    static func write(_ slot: UnsafeMutableRawPointer, generation: UInt64, header: RingChunkHeader,
                      data: UnsafeRawBufferPointer) {
        writeHeader(slot, generation: generation, header: header)
        if let source = data.baseAddress, !data.isEmpty {
            self.data(slot).copyMemory(from: source, byteCount: data.count)
        }
    }

    /// Where a slot's float32 data starts (64-byte aligned).
    static func data(_ slot: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        slot + InboxLayout.slotHeaderBytes
    }

    /// Writes only the header; the caller fills the data (`data(slot)`).
    static func writeHeader(_ slot: UnsafeMutableRawPointer, generation: UInt64, header: RingChunkHeader) {
        slot.storeBytes(of: generation, toByteOffset: 0, as: UInt64.self)
        slot.storeBytes(of: header.sequence, toByteOffset: 8, as: UInt64.self)
        slot.storeBytes(of: header.elementOffset, toByteOffset: 16, as: UInt64.self)
        slot.storeBytes(of: header.collective.rawValue, toByteOffset: 24, as: UInt8.self)
        slot.storeBytes(of: header.sourceRank, toByteOffset: 28, as: UInt32.self)
        slot.storeBytes(of: header.ringStep, toByteOffset: 32, as: UInt32.self)
        slot.storeBytes(of: header.piece, toByteOffset: 36, as: UInt32.self)
        slot.storeBytes(of: header.elementCount, toByteOffset: 40, as: UInt32.self)
        slot.storeBytes(of: header.dataChecksum == nil ? 0 : 1, toByteOffset: 25, as: UInt8.self)
        slot.storeBytes(of: header.dataChecksum ?? 0, toByteOffset: 44, as: UInt32.self)
    }

    /// Reads the piece in `slot`. The producer is another process: every field is checked
    /// before use, and a piece that claims more data than the slot holds is a typed error.
    static func read(_ slot: UnsafeRawPointer, slotBytes: Int, from rank: Int)
        throws(RingError) -> (generation: UInt64, header: RingChunkHeader, data: UnsafeRawBufferPointer) {
        let rawCollective = slot.load(fromByteOffset: 24, as: UInt8.self)
        let count = slot.load(fromByteOffset: 40, as: UInt32.self)
        guard let collective = Collective(rawValue: rawCollective) else {
            throw .unexpectedPiece(rank: rank, expected: "a ring collective", found: "collective code \(rawCollective)")
        }
        let byteCount = Int(count) * MemoryLayout<Float>.size
        guard byteCount <= slotBytes else {
            throw .unexpectedPiece(rank: rank, expected: "at most \(slotBytes / 4) elements in a slot", found: "\(count) elements")
        }
        let header = RingChunkHeader(collective: collective, sequence: slot.load(fromByteOffset: 8, as: UInt64.self),
                                     sourceRank: slot.load(fromByteOffset: 28, as: UInt32.self),
                                     ringStep: slot.load(fromByteOffset: 32, as: UInt32.self),
                                     piece: slot.load(fromByteOffset: 36, as: UInt32.self),
                                     elementOffset: slot.load(fromByteOffset: 16, as: UInt64.self),
                                     elementCount: count,
                                     dataChecksum: slot.load(fromByteOffset: 25, as: UInt8.self) == 0
                                         ? nil : slot.load(fromByteOffset: 44, as: UInt32.self))
        return (slot.load(fromByteOffset: 0, as: UInt64.self), header,
                UnsafeRawBufferPointer(start: slot + InboxLayout.slotHeaderBytes, count: byteCount))
    }
}
#endif
