import Foundation
import Testing
@testable import Model

/// LISTA against the PyTorch reference (scripts/reference/scvae_reference.py lista-fixture):
/// P = 6, C = 64, K = 128, T = 5, beta = 1, gradients of L = sum(hHat * G).
/// Skipped when Tests/Fixtures/lista is absent (it comes from the reference branch).
@Suite struct LISTAFixtureTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/lista")
    static var present: Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("expected.safetensors").path)
    }

    @Test(.enabled(if: present)) func matchesPyTorch() throws {
        let inputs = try readSafetensors(Self.directory.appendingPathComponent("inputs.safetensors"))
        let expected = try readSafetensors(Self.directory.appendingPathComponent("expected.safetensors"))
        let h = try #require(inputs["h"]), dictionary = try #require(inputs["Dict"])
        let c = try #require(inputs["c"]).values[0], weights = try #require(inputs["G"])
        let P = h.shape[0], C = h.shape[1], K = dictionary.shape[1]
        var config = ModelConfig.tiny
        config.latentChannels = C
        config.atoms = K
        config.istaIterations = 5
        config.beta = 1

        let lista = LISTA(config: config, maxPositions: P)
        var hHat = [Float](repeating: 0, count: P * C), codes = [Float](repeating: 0, count: P * K)
        var dH = [Float](repeating: 0, count: P * C), dDictionary = [Float](repeating: 0, count: C * K)
        var dC: Float = 0
        _ = lista.forward(h: h.values, dictionary: dictionary.values, c: c, positions: P, hHat: &hHat, codes: &codes)
        lista.backward(dHHat: weights.values, h: h.values, dictionary: dictionary.values, c: c, positions: P,
                       dH: &dH, dDictionary: &dDictionary, dC: &dC)

        for (name, values) in [("hHat", hHat), ("codes", codes), ("grad.h", dH), ("grad.Dict", dDictionary), ("grad.c", [dC])] {
            let reference = try #require(expected[name]).values.map { Double($0) }
            let result = compare(values, reference)
            // The reference README: float32 gradients agree to about 1e-4 of each tensor's max.
            #expect(result.maxDiff <= 1e-4 * result.scale, "\(name): \(result.message)")
        }
    }
}

/// Just enough of safetensors for F32 fixtures: u64 header size, JSON header, little-endian data.
func readSafetensors(_ url: URL) throws -> [String: TensorValues] {
    let data = try Data(contentsOf: url)
    let headerSize = Int(littleEndian(data, at: 0, bytes: 8))
    let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerSize))) as! [String: Any]
    var tensors: [String: TensorValues] = [:]
    for (name, info) in header where name != "__metadata__" {
        let info = info as! [String: Any]
        precondition(info["dtype"] as? String == "F32", "\(name) is not F32")
        let offsets = info["data_offsets"] as! [Int]
        let bytes = data.subdata(in: (8 + headerSize + offsets[0])..<(8 + headerSize + offsets[1]))
        let values = stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(littleEndian(bytes, at: i, bytes: 4)))
        }
        tensors[name] = TensorValues(shape: info["shape"] as! [Int], values: values)
    }
    return tensors
}

private func littleEndian(_ data: Data, at offset: Int, bytes: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<bytes {
        let byte = UInt64(data[data.startIndex + offset + i])
        value |= byte << UInt64(8 * i)
    }
    return value
}
