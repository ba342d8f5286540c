import CZmq

/// CURVE keys as ZeroMQ writes them: 32 bytes in Z85 (ZeroMQ RFC 32), 40 characters.
enum Z85Key {
    static let length = 40

    /// Why `text` is not a Z85 CURVE key, or nil when it is one.
    static func problem(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count == length else { return "\(bytes.count) characters, Z85 keys have \(length)" }
        guard decode(text) != nil else { return "characters outside the Z85 alphabet" }
        return nil
    }

    /// The 32 bytes of a Z85 key, or nil if it is not one.
    static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count == length else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        let ok = (characters.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { source in
            zmq_z85_decode(&bytes, source.baseAddress) != nil
        }
        return ok ? bytes : nil
    }

    /// The Z85 text of 32 key bytes (nil for any other length).
    static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: length + 1)
        guard zmq_z85_encode(&text, bytes, bytes.count) != nil else { return nil }
        return String(decoding: text.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The public key of a Z85 secret key (libzmq's `zmq_curve_public`), or nil.
    static func publicKey(ofSecret secret: String) -> String? {
        guard decode(secret) != nil else { return nil }
        var publicKey = [CChar](repeating: 0, count: length + 1)
        let secretCharacters = Array(secret.utf8).map { CChar(bitPattern: $0) } + [0]
        guard zmq_curve_public(&publicKey, secretCharacters) == 0 else { return nil }
        return String(decoding: publicKey.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
