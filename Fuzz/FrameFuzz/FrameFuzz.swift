// libFuzzer entry point for the frame and message decoders (compiled together with the
// libzmq-free Wire sources; see Fuzz/README.md).
//
// Properties checked on every input, beyond "never traps":
// - a frame that decodes re-encodes to exactly the same bytes;
// - bytes taken as the payload of the message kind chosen by the first byte either fail with a
//   DecodeError or decode to a message whose encoding is exactly those bytes.
// The second path lets the fuzzer reach the message decoders without forging a CRC32C.

@_cdecl("LLVMFuzzerTestOneInput")
public func frameFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []

    if let envelope = try? Envelope.decode(bytes, limits: DecodeLimits(maxPayloadLength: 1 << 20)) {
        guard envelope.encoded() == bytes else { fatalError("frame re-encodes differently") }
    }

    if let first = bytes.first {
        let kinds = MessageKind.allCases
        let kind = kinds[Int(first) % kinds.count]
        let payload = Array(bytes.dropFirst())
        if let message = try? Message.decode(kind: kind, payload: payload) {
            guard message.encodedPayload() == payload else { fatalError("\(kind) payload re-encodes differently") }
        }
    }
    return 0
}
