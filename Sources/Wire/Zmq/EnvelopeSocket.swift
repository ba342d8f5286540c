/// One message received on a control socket: who sent it (ROUTER sockets prefix an identity)
/// and either the decoded envelope or why it could not be decoded. A bad frame is a value,
/// not a thrown error, so the receive loop logs it, counts it and goes on (docs/protocol.md, "Frames").
public struct ReceivedEnvelope: Sendable {
    /// The ROUTER identity of the sender; nil on DEALER, PULL and PAIR sockets, and for a
    /// message of too many parts (discarded unread).
    public var identity: [UInt8]?
    public var envelope: Result<Envelope, DecodeError>
    /// The sender's IP address on a TCP connection (libzmq's "Peer-Address"), when known.
    public var peerAddress: String? = nil
}

extension ZmqSocket {
    /// Sends one framed message (DEALER, PUSH, PAIR).
    public func send(_ envelope: Envelope, deadline: ContinuousClock.Instant) throws(ZmqError) {
        try send(envelope.encoded(), deadline: deadline)
    }

    /// Sends one framed message to the peer with `identity` (ROUTER).
    public func send(_ envelope: Envelope, to identity: [UInt8], deadline: ContinuousClock.Instant) throws(ZmqError) {
        try send(parts: [identity, envelope.encoded()], deadline: deadline)
    }

    /// Makes libzmq refuse message parts larger than a frame within `limits` (plus
    /// `messageSizeMargin`): a peer sending one is disconnected before the part is buffered,
    /// instead of the size check running after libzmq holds the whole message. Such a message
    /// is then not delivered at all (no `.oversized` failure to count). Call before `bind`/`connect`.
    public func limitMessageSize(to limits: DecodeLimits) throws(ZmqError) {
        try setMaxMessageSize(limits.maxPayloadLength + FrameHeader.size + Self.messageSizeMargin)
    }

    /// Receives one message and decodes it. Throws only transport failures (including the
    /// deadline); a malformed frame, or a message of too many parts, comes back as `.failure`
    /// in `envelope`.
    public func receiveEnvelope(deadline: ContinuousClock.Instant, limits: DecodeLimits = .default,
                                expectedRunID: UInt64? = nil) throws(ZmqError) -> ReceivedEnvelope {
        let parts: [ZmqMessage]
        do throws(ZmqError) {
            parts = try receiveParts(deadline: deadline, maxParts: 3)
        } catch .tooManyParts(_, let count, _) {
            return ReceivedEnvelope(identity: nil, envelope: .failure(.invalidValue(field: "message parts",
                                                                                    detail: "\(count) parts, expected 1 or 2")))
        }
        switch parts.count {
        case 1:
            return ReceivedEnvelope(identity: nil, envelope: decode(parts[0], limits, expectedRunID))
        case 2:
            return ReceivedEnvelope(identity: parts[0].bytes, envelope: decode(parts[1], limits, expectedRunID),
                                    peerAddress: parts[1].property("Peer-Address"))
        default:
            return ReceivedEnvelope(identity: parts.first?.bytes,
                                    envelope: .failure(.invalidValue(field: "message parts", detail: "\(parts.count) parts, expected 1 or 2")))
        }
    }

    private func decode(_ part: ZmqMessage, _ limits: DecodeLimits, _ expectedRunID: UInt64?) -> Result<Envelope, DecodeError> {
        // Check the size before copying the bytes out of libzmq's buffer.
        guard part.count <= limits.maxPayloadLength + FrameHeader.size else {
            return .failure(.oversized(payloadLength: UInt64(part.count), limit: limits.maxPayloadLength))
        }
        do {
            return .success(try Envelope.decode(part.bytes, limits: limits, expectedRunID: expectedRunID))
        } catch {
            return .failure(error)
        }
    }
}
