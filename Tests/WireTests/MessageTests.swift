import Testing
@testable import Wire

@Suite struct MessageTests {
    @Test func everyKindHasASample() {
        #expect(Set(MessageSamples.all.map(\.kind)) == Set(MessageKind.allCases))
    }

    @Test(arguments: MessageSamples.all)
    func roundTripsWhole(message: Message) throws {
        let envelope = Envelope(generation: 12, runID: 0xFEED, message: message)
        let decoded = try Envelope.decode(envelope.encoded(), expectedRunID: 0xFEED)
        #expect(decoded == envelope)
    }

    /// Every proper prefix of a valid frame is a typed error (never a crash, never a message).
    @Test(arguments: MessageSamples.all)
    func everyPrefixIsATypedError(message: Message) {
        let bytes = Envelope(generation: 3, runID: 4, message: message).encoded()
        for length in 0..<bytes.count {
            do {
                let decoded = try Envelope.decode(Array(bytes.prefix(length)))
                Issue.record("prefix of \(length)/\(bytes.count) bytes decoded as \(decoded)")
            } catch {
                if case .truncated = error {} else { Issue.record("prefix \(length): \(error)") }
            }
        }
    }

    /// Every payload prefix, re-framed with a correct checksum, reaches the message decoder:
    /// it must fail with a typed error, since the decoder demands every field.
    @Test(arguments: MessageSamples.all)
    func everyPayloadPrefixIsATypedError(message: Message) {
        let payload = message.encodedPayload()
        for length in 0..<payload.count {
            let frame = Frame.encode(kind: message.kind, generation: 0, runID: 0, payload: Array(payload.prefix(length)))
            #expect(throws: DecodeError.self, "payload prefix \(length)/\(payload.count)") { try Envelope.decode(frame) }
        }
    }

    /// Random byte mutations: each attempt is a typed error or a valid message, never a trap.
    /// Half the attempts re-sign the frame so the mutation reaches the message decoder.
    @Test(arguments: MessageSamples.all)
    func randomMutationsNeverTrap(message: Message) {
        var rng = SplitMix64(seed: UInt64(message.kind.rawValue) &* 0x9E37_79B9)
        let original = Envelope(generation: 3, runID: 4, message: message).encoded()
        var decodedCount = 0
        for attempt in 0..<2000 {
            var bytes = original
            let mutations = 1 + Int(rng.next() % 4)
            for _ in 0..<mutations {
                let index = Int(rng.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: rng.next())
            }
            if attempt % 2 == 1, bytes.count >= 32 {
                let checksum = crc32c(Array(bytes[32...]), continuing: crc32c(Array(bytes[0..<28])))
                withUnsafeBytes(of: checksum.littleEndian) { bytes.replaceSubrange(28..<32, with: $0) }
            }
            if let decoded = try? Envelope.decode(bytes) {
                decodedCount += 1
                // Whatever decodes must encode back to the same bytes.
                #expect(decoded.encoded() == bytes)
            }
        }
        // The round-trip check above must have run: some re-signed mutations decode.
        #expect(decodedCount > 0, "no mutation of \(message.kind) decoded, so none was checked")
    }
}

/// A small deterministic generator for tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
