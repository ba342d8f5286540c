/// The message kinds, as carried in the frame header.
/// Raw values are part of the protocol: never renumber, only add.
public enum MessageKind: UInt16, CaseIterable, Sendable {
    case hello = 1
    case welcome = 2
    case refuse = 3
    case assignment = 4
    case heartbeat = 5
    case stepReport = 6
    case workerStatus = 7
    case tensorChunk = 8
    case checkpoint = 9
    case abort = 10
    case shutdown = 11
    case ringChunk = 12
    /// Since protocol version 4.
    case stopRequest = 13
    /// Since protocol version 6.
    case validationReport = 14
    /// Since protocol version 6.
    case timelineReport = 15
}

/// A message body: its kind, and its little-endian payload encoding.
public protocol WirePayload: Equatable, Sendable {
    static var kind: MessageKind { get }
    func encode(into writer: inout ByteWriter)
    /// Reads exactly this message's fields; the caller checks that nothing follows.
    init(from reader: inout ByteReader) throws(DecodeError)
}

extension WirePayload {
    public func encodedPayload() -> [UInt8] {
        var writer = ByteWriter()
        encode(into: &writer)
        return writer.bytes
    }

    public static func decodePayload(_ payload: [UInt8]) throws(DecodeError) -> Self {
        var reader = ByteReader(payload)
        let value = try Self(from: &reader)
        try reader.expectEnd("\(kind) payload")
        return value
    }
}
