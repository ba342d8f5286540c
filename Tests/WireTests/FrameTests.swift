import Testing
@testable import Wire

@Suite struct FrameTests {
    @Test func headerLayoutMatchesTheDocumentedTable() throws {
        let bytes = Frame.encode(kind: .heartbeat, generation: 0x0102_0304_0506_0708, runID: 0xA1A2_A3A4_A5A6_A7A8,
                                 payload: [9, 9, 9])
        #expect(bytes.count == 35)
        #expect(Array(bytes[0..<4]) == Array("SCVW".utf8))
        #expect(Array(bytes[4..<6]) == [7, 0])
        #expect(Array(bytes[6..<8]) == [5, 0])
        #expect(Array(bytes[8..<16]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(bytes[16..<24]) == [0xA8, 0xA7, 0xA6, 0xA5, 0xA4, 0xA3, 0xA2, 0xA1])
        #expect(Array(bytes[24..<28]) == [3, 0, 0, 0])
        let checksum = crc32c([9, 9, 9], continuing: crc32c(Array(bytes[0..<28])))
        #expect(Array(bytes[28..<32]) == withUnsafeBytes(of: checksum.littleEndian) { Array($0) })
        let (header, payload) = try Frame.decode(bytes)
        #expect(header.kind == .heartbeat && header.generation == 0x0102_0304_0506_0708)
        #expect(header.runID == 0xA1A2_A3A4_A5A6_A7A8 && payload == [9, 9, 9])
    }

    @Test func typedErrorsForEachKindOfBadFrame() {
        let good = Frame.encode(kind: .heartbeat, generation: 1, runID: 2, payload: Heartbeat(sequence: 1, lastAppliedStep: 0).encodedPayload())
        func decodeError(_ bytes: [UInt8], limits: DecodeLimits = .default) -> DecodeError? {
            do { _ = try Frame.decode(bytes, limits: limits); return nil } catch { return error }
        }
        #expect(decodeError([]) == .truncated(field: "header.magic", needed: 4, available: 0))
        #expect(decodeError(Array(good.prefix(31))) == .truncated(field: "header.checksum", needed: 4, available: 3))
        #expect(decodeError(Array(good.prefix(40))) == .truncated(field: "payload", needed: 16, available: 8))
        var wrongMagic = good; wrongMagic[0] = 0x54
        #expect(decodeError(wrongMagic) == .badMagic(found: 0x5756_4354))
        var wrongVersion = good; wrongVersion[4] = 1
        #expect(decodeError(wrongVersion) == .unsupportedVersion(found: 1, supported: 7))
        // A version 6 peer would ignore the recipe's beta and latent weight: a clear version error.
        var previousVersion = good; previousVersion[4] = 6
        #expect(decodeError(previousVersion) == .unsupportedVersion(found: 6, supported: 7))
        #expect(decodeError(good, limits: DecodeLimits(maxPayloadLength: 15)) == .oversized(payloadLength: 16, limit: 15))
        #expect(decodeError(good + [0]) == .trailingBytes(message: "frame", count: 1))
        var flipped = good; flipped[40] ^= 0x10
        if case .badChecksum = decodeError(flipped) {} else { Issue.record("expected badChecksum, got \(String(describing: decodeError(flipped)))") }
        var flippedGeneration = good; flippedGeneration[8] ^= 1
        if case .badChecksum = decodeError(flippedGeneration) {} else { Issue.record("header bits must be covered by the checksum") }
        // An unknown kind with a valid checksum: re-sign the frame after patching the kind.
        var unknown = good; unknown[6] = 200
        let resigned = crc32c(Array(unknown[32...]), continuing: crc32c(Array(unknown[0..<28])))
        withUnsafeBytes(of: resigned.littleEndian) { unknown.replaceSubrange(28..<32, with: $0) }
        #expect(decodeError(unknown) == .unknownKind(rawValue: 200))
    }

    @Test func foreignRunIsRejectedWhenARunIDIsExpected() throws {
        let bytes = Envelope(generation: 1, runID: 77, message: .shutdown(Shutdown(reason: "x"))).encoded()
        #expect(throws: DecodeError.foreignRun(found: 77, expected: 78)) { try Envelope.decode(bytes, expectedRunID: 78) }
        #expect(try Envelope.decode(bytes, expectedRunID: 77).runID == 77)
    }

    @Test func readerRejectsHostileLengthsWithoutAllocating() {
        var reader = ByteReader([0xFF, 0xFF, 0xFF, 0xFF, 1, 2])
        #expect(throws: DecodeError.truncated(field: "s", needed: 4_294_967_295, available: 2)) { try reader.readString("s") }
        var arrayReader = ByteReader([0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: DecodeError.self) {
            try arrayReader.readArray("a", minimumElementSize: 8) { r throws(DecodeError) in try r.readUInt64("a[]") }
        }
        var utf8 = ByteReader([2, 0, 0, 0, 0xC3, 0x28])
        #expect(throws: DecodeError.invalidValue(field: "u", detail: "2 bytes are not valid UTF-8")) { try utf8.readString("u") }
    }
}
