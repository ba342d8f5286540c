/// Why a frame or a message could not be decoded. A decoder returns one of these for any input
/// it cannot accept; it never traps. Each case carries what a person needs to find the cause.
public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the field needs: `field` names it, `needed` and `available` are byte counts.
    case truncated(field: String, needed: Int, available: Int)
    /// The header announces a payload larger than this decoder accepts (`DecodeLimits.maxPayloadLength`).
    case oversized(payloadLength: UInt64, limit: Int)
    /// The first four bytes are not `FrameHeader.magic`: not one of our frames (or a stream misaligned).
    case badMagic(found: UInt32)
    /// The peer speaks another protocol version; `supported` is the one this build speaks.
    case unsupportedVersion(found: UInt16, supported: UInt16)
    /// The CRC32C in the header (`expected`) differs from the one computed over the bytes (`computed`):
    /// corruption in transit or a bug in the sender.
    case badChecksum(expected: UInt32, computed: UInt32)
    /// The header's message kind is not one this protocol version defines.
    case unknownKind(rawValue: UInt16)
    /// A frame or message has `count` bytes after its end; `message` names what was being decoded.
    case trailingBytes(message: String, count: Int)
    /// A field decoded but its value is not allowed (`detail` says which rule it breaks).
    case invalidValue(field: String, detail: String)
    /// The frame is valid but was sent by another job: `found` is its run id, `expected` ours.
    case foreignRun(found: UInt64, expected: UInt64)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            "truncated: field '\(field)' needs \(needed) bytes, \(available) left"
        case let .oversized(length, limit):
            "oversized: payload of \(length) bytes exceeds the limit of \(limit)"
        case let .badMagic(found):
            "bad magic 0x\(String(found, radix: 16)), expected 0x\(String(FrameHeader.magic, radix: 16))"
        case let .unsupportedVersion(found, supported):
            "unsupported protocol version \(found); this build speaks \(supported)"
        case let .badChecksum(expected, computed):
            "bad checksum: header says 0x\(String(expected, radix: 16)), bytes give 0x\(String(computed, radix: 16))"
        case let .unknownKind(rawValue):
            "unknown message kind \(rawValue)"
        case let .trailingBytes(message, count):
            "\(count) unexpected bytes after the end of \(message)"
        case let .invalidValue(field, detail):
            "invalid '\(field)': \(detail)"
        case let .foreignRun(found, expected):
            "frame of run \(String(found, radix: 16)) received by run \(String(expected, radix: 16))"
        }
    }
}
