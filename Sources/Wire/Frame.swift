/// The frame header that starts every message on the wire.
///
/// Layout (little-endian, 32 bytes, then `payloadLength` bytes of payload):
///
/// | offset | size | field           | notes                                                   |
/// |-------:|-----:|-----------------|---------------------------------------------------------|
/// |      0 |    4 | magic           | bytes `53 43 56 57` ("SCVW"), `FrameHeader.magic`        |
/// |      4 |    2 | version         | protocol version, `FrameHeader.currentVersion`          |
/// |      6 |    2 | kind            | `MessageKind` raw value                                 |
/// |      8 |    8 | generation      | membership generation; older ones are dropped           |
/// |     16 |    8 | runID           | job id, so two jobs on one host cannot cross-talk       |
/// |     24 |    4 | payloadLength   | bytes of payload after the header                       |
/// |     28 |    4 | checksum        | CRC32C of header bytes 0..<28, continued over payload   |
///
/// The checksum covers the header fields as well as the payload, so a flipped bit in the
/// generation or run id is caught like one in the payload.
public struct FrameHeader: Equatable, Sendable {
    /// "SCVW" read as a little-endian `UInt32`.
    public static let magic: UInt32 = 0x5756_4353
    /// 3: the hello names its shared memory, the assignment its ring transport, an abort can
    /// say the transport was unavailable. 4: the hello carries the worker's instance and replica
    /// claim, an abort its cause, and a stop request is a message of its own. 5: an abort can say
    /// the next rank's ring address was unreachable. 6: validation and timeline reports. 7: the recipe carries
    /// beta and the latent weight, which an older worker would ignore and so train another model.
    public static let currentVersion: UInt16 = 7
    public static let size = 32

    public var version: UInt16
    public var kind: MessageKind
    public var generation: UInt64
    public var runID: UInt64
    public var payloadLength: UInt32
    public var checksum: UInt32

    public init(version: UInt16 = FrameHeader.currentVersion, kind: MessageKind, generation: UInt64,
                runID: UInt64, payloadLength: UInt32, checksum: UInt32) {
        self.version = version
        self.kind = kind
        self.generation = generation
        self.runID = runID
        self.payloadLength = payloadLength
        self.checksum = checksum
    }
}

/// Limits a decoder enforces before it allocates or checksums anything.
public struct DecodeLimits: Sendable, Equatable {
    /// Largest payload accepted, in bytes. Tensor transfers are chunked below this.
    public var maxPayloadLength: Int

    public init(maxPayloadLength: Int = 64 << 20) {
        self.maxPayloadLength = max(0, maxPayloadLength)
    }

    public static let `default` = DecodeLimits()
}

/// Encoding and decoding of whole frames (header + payload) as byte arrays.
public enum Frame {
    /// Frame bytes for `payload`. Payloads over 4 GiB cannot be framed; callers chunk far below that.
    public static func encode(kind: MessageKind, generation: UInt64, runID: UInt64,
                              payload: [UInt8], version: UInt16 = FrameHeader.currentVersion) -> [UInt8] {
        precondition(payload.count <= Int(UInt32.max), "payload of \(payload.count) bytes needs chunking")
        var writer = ByteWriter(reservingCapacity: FrameHeader.size + payload.count)
        writer.write(FrameHeader.magic)
        writer.write(version)
        writer.write(kind.rawValue)
        writer.write(generation)
        writer.write(runID)
        writer.write(UInt32(payload.count))
        var bytes = writer.bytes
        let checksum = payload.withUnsafeBytes { crc32c($0, continuing: crc32c(bytes)) }
        withUnsafeBytes(of: checksum.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// Decodes one complete frame: exactly a header and its payload, nothing after it.
    ///
    /// Checks in this order: header length, magic, version, payload limit, kind is read,
    /// payload length, trailing bytes, checksum, kind known.
    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default) throws(DecodeError) -> (header: FrameHeader, payload: [UInt8]) {
        var reader = ByteReader(bytes)
        let magic = try reader.readUInt32("header.magic")
        guard magic == FrameHeader.magic else { throw .badMagic(found: magic) }
        let version = try reader.readUInt16("header.version")
        guard version == FrameHeader.currentVersion else {
            throw .unsupportedVersion(found: version, supported: FrameHeader.currentVersion)
        }
        let rawKind = try reader.readUInt16("header.kind")
        let generation = try reader.readUInt64("header.generation")
        let runID = try reader.readUInt64("header.runID")
        let payloadLength = try reader.readUInt32("header.payloadLength")
        guard UInt64(payloadLength) <= UInt64(limits.maxPayloadLength) else {
            throw .oversized(payloadLength: UInt64(payloadLength), limit: limits.maxPayloadLength)
        }
        let expected = try reader.readUInt32("header.checksum")
        let payload = try reader.readRaw("payload", count: Int(payloadLength))
        try reader.expectEnd("frame")
        let computed = bytes.withUnsafeBytes { raw in
            crc32c(UnsafeRawBufferPointer(rebasing: raw[FrameHeader.size...]),
                   continuing: crc32c(UnsafeRawBufferPointer(rebasing: raw[..<28])))
        }
        guard computed == expected else { throw .badChecksum(expected: expected, computed: computed) }
        guard let kind = MessageKind(rawValue: rawKind) else { throw .unknownKind(rawValue: rawKind) }
        let header = FrameHeader(version: version, kind: kind, generation: generation, runID: runID,
                                 payloadLength: payloadLength, checksum: expected)
        return (header, payload)
    }
}
