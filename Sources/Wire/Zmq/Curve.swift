import CZmq

/// A CURVE key pair in Z85 text (40 characters each), the form ZeroMQ's certificate files use.
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (needs libzmq built with CURVE; see `isCurveAvailable`).
    public static func generate() throws(ZmqError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw .last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: z85String(publicKey), secretKey: z85String(secretKey))
    }

    /// Whether this libzmq supports CURVE security.
    public static var isCurveAvailable: Bool { zmq_has("curve") == 1 }
}

private func z85String(_ characters: [CChar]) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension ZmqSocket {
    /// Makes this socket a CURVE server (it must be set before bind): peers must know its
    /// public key and it proves itself with `keys.secretKey`. Without a ZAP handler in this
    /// socket's context any client with the server key connects: to admit listed client keys
    /// only, use `enableCurveServer(_:authenticatedBy:)` with a `ZapAuthenticator`.
    public func enableCurveServer(_ keys: CurveKeyPair) throws(ZmqError) {
        try setOption(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: try z85Bytes(keys.secretKey, "secret key"), "ZMQ_CURVE_SECRETKEY")
    }

    /// Makes this socket a CURVE client of the server with `serverPublicKey` (before connect).
    public func enableCurveClient(_ keys: CurveKeyPair, serverPublicKey: String) throws(ZmqError) {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: try z85Bytes(serverPublicKey, "server public key"), "ZMQ_CURVE_SERVERKEY")
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: try z85Bytes(keys.publicKey, "public key"), "ZMQ_CURVE_PUBLICKEY")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: try z85Bytes(keys.secretKey, "secret key"), "ZMQ_CURVE_SECRETKEY")
    }

    /// A Z85 key as libzmq takes it: 40 characters and a terminating NUL.
    private func z85Bytes(_ key: String, _ what: String) throws(ZmqError) -> [UInt8] {
        let bytes = Array(key.utf8)
        guard bytes.count == 40 else {
            throw .call(operation: "CURVE \(what)", errno: EINVAL, text: "Z85 keys have 40 characters, this one \(bytes.count)")
        }
        return bytes + [0]
    }
}
