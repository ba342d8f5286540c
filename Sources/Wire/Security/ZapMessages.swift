/// One ZAP request (ZeroMQ RFC 27) as libzmq sends it to the handler bound at
/// `inproc://zeromq.zap.01`, after a REP socket has taken off the envelope:
/// version "1.0", request id, domain, peer address, identity, mechanism, credentials...
struct ZapRequest: Equatable {
    var requestID: [UInt8]
    var domain: String
    /// The peer's address as libzmq reports it (the IP address for tcp://).
    var address: String
    var identity: [UInt8]
    /// "NULL", "PLAIN", "CURVE" or "GSSAPI".
    var mechanism: String
    /// CURVE: one frame, the client's 32-byte long-term public key.
    var credentials: [[UInt8]]

    static let version = "1.0"

    /// Why frames are not a ZAP request (the handler then answers 500).
    struct Malformed: Error, Equatable {
        var requestID: [UInt8]
        var address: String
        var reason: String
    }

    static func parse(_ frames: [[UInt8]]) throws(Malformed) -> ZapRequest {
        let requestID = frames.count > 1 ? frames[1] : []
        let address = frames.count > 3 ? text(frames[3]) : ""
        guard frames.count >= 6 else {
            throw Malformed(requestID: requestID, address: address, reason: "\(frames.count) frames, a ZAP request has at least 6")
        }
        guard text(frames[0]) == version else {
            throw Malformed(requestID: requestID, address: address, reason: "ZAP version \"\(text(frames[0]).prefix(16))\", expected \(version)")
        }
        return ZapRequest(requestID: requestID, domain: text(frames[2]), address: address, identity: frames[4],
                          mechanism: text(frames[5]), credentials: Array(frames.dropFirst(6)))
    }

    private static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}

/// The handler's answer: version, the request id echoed, status code ("200" admits, "400"
/// refuses, "500" says the request was malformed), status text, user id, metadata.
struct ZapReply: Equatable {
    var requestID: [UInt8]
    var statusCode: String
    var statusText: String
    /// libzmq attaches it to every message from this peer (property "User-Id").
    var userID: String

    var frames: [[UInt8]] {
        [Array(ZapRequest.version.utf8), requestID, Array(statusCode.utf8), Array(statusText.utf8), Array(userID.utf8), []]
    }
}
