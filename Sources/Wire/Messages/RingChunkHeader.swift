/// Which collective a ring chunk belongs to.
public enum Collective: UInt8, Sendable, CaseIterable {
    case allReduce = 1
    case broadcast = 2
}

/// Data plane, rank -> next rank: describes the float32 elements that travel in the next
/// message part (sent zero-copy, not inside this frame).
public struct RingChunkHeader: WirePayload {
    public static let kind = MessageKind.ringChunk

    public var collective: Collective
    /// Number of the collective within the generation, so a late piece of an earlier
    /// collective is never mixed into the current one.
    public var sequence: UInt64
    public var sourceRank: UInt32
    /// Step of the ring schedule, 0..<2(N-1) for all-reduce; 0 for broadcast.
    public var ringStep: UInt32
    /// Index of the piece within the step (pieces are pipelined).
    public var piece: UInt32
    /// First float32 element of the buffer this piece covers.
    public var elementOffset: UInt64
    public var elementCount: UInt32
    /// CRC32C of the data part, when the ring checks data (`nil` = not checked).
    public var dataChecksum: UInt32?

    public init(collective: Collective, sequence: UInt64, sourceRank: UInt32, ringStep: UInt32, piece: UInt32,
                elementOffset: UInt64, elementCount: UInt32, dataChecksum: UInt32? = nil) {
        self.collective = collective
        self.sequence = sequence
        self.sourceRank = sourceRank
        self.ringStep = ringStep
        self.piece = piece
        self.elementOffset = elementOffset
        self.elementCount = elementCount
        self.dataChecksum = dataChecksum
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(collective.rawValue)
        writer.write(sequence)
        writer.write(sourceRank)
        writer.write(ringStep)
        writer.write(piece)
        writer.write(elementOffset)
        writer.write(elementCount)
        writer.writeOptional(dataChecksum) { $0.write($1) }
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        collective = try reader.readEnum("ringChunk.collective")
        sequence = try reader.readUInt64("ringChunk.sequence")
        sourceRank = try reader.readUInt32("ringChunk.sourceRank")
        ringStep = try reader.readUInt32("ringChunk.ringStep")
        piece = try reader.readUInt32("ringChunk.piece")
        elementOffset = try reader.readUInt64("ringChunk.elementOffset")
        elementCount = try reader.readUInt32("ringChunk.elementCount")
        dataChecksum = try reader.readOptional("ringChunk.dataChecksum") { r throws(DecodeError) in
            try r.readUInt32("ringChunk.dataChecksum")
        }
    }
}
