import Model
import Testing

/// SCVAEModel.encode and .decode: the codes of the forward pass, and the forward's image from them.
@Suite struct ModelCodesTests {
    @Test func encodeGivesTheReferenceCodes() throws {
        let parameters = try TinyFixture.parameters(), images = try TinyFixture.images()
        let (shape, expected) = try TinyFixture.codes()
        let model = SCVAEModel(config: .tiny, maxBatch: 2)
        #expect(shape == [2 * 64, 128])
        var codes = [Float](repeating: .nan, count: expected.count)
        let zeros = parameters.withUnsafeBufferPointer { p in
            codes.withUnsafeMutableBufferPointer { model.encode(parameters: p, images: images, batch: 2, codes: $0.baseAddress!) }
        }
        // The fixture keeps every threshold input a margin away from theta, so the zero patterns agree exactly.
        let zeroPattern = codes.map { $0 == 0 }, expectedPattern = expected.map { $0 == 0 }
        #expect(zeroPattern == expectedPattern, "\(zip(zeroPattern, expectedPattern).filter { $0 != $1 }.count) codes differ in being zero")
        #expect(zeros == expectedPattern.filter { $0 }.count)
        let difference = maxAbsDifference(codes, expected), scale = maxAbs(expected)
        #expect(difference <= 1e-4 * scale, "max difference \(difference), scale \(scale); first \(Array(codes.prefix(4))) vs \(Array(expected.prefix(4)))")
    }

    @Test func decodingTheCodesGivesTheForwardImageExactly() throws {
        let parameters = try TinyFixture.parameters(), images = try TinyFixture.images()
        let model = SCVAEModel(config: .tiny, maxBatch: 2)
        var forward = [Float](repeating: .nan, count: images.count), decoded = forward
        var codes = [Float](repeating: .nan, count: 2 * 64 * 128)
        parameters.withUnsafeBufferPointer { p in
            _ = forward.withUnsafeMutableBufferPointer { model.forward(parameters: p, images: images, batch: 2, reconstruction: $0.baseAddress!) }
            _ = codes.withUnsafeMutableBufferPointer { model.encode(parameters: p, images: images, batch: 2, codes: $0.baseAddress!) }
            // A fresh model, so nothing the forward left in the caches can help.
            let other = SCVAEModel(config: .tiny, maxBatch: 2)
            decoded.withUnsafeMutableBufferPointer { other.decode(parameters: p, codes: codes, batch: 2, reconstruction: $0.baseAddress!) }
        }
        #expect(decoded == forward, "max difference \(maxAbsDifference(decoded, forward))")
        #expect(!forward.contains { $0.isNaN })
        // Changing the codes changes the image: decode reads them.
        codes[5 * 128 + 3] += 1
        var edited = decoded
        parameters.withUnsafeBufferPointer { p in
            edited.withUnsafeMutableBufferPointer { model.decode(parameters: p, codes: codes, batch: 2, reconstruction: $0.baseAddress!) }
        }
        #expect(edited != forward)
    }
}
