import Foundation
import Testing
@testable import Model

/// LISTA against the PyTorch reference (scripts/reference/scvae_reference.py lista-fixture):
/// P = 6, C = 64, K = 128, T = 5, beta = 1, gradients of L = sum(hHat * G).
@Suite struct LISTAFixtureTests {
    static let directory = FixtureFiles.folder("lista")

    @Test func matchesPyTorch() throws {
        let inputs = try FixtureFiles.tensors(Self.directory.appendingPathComponent("inputs.safetensors")).tensors
        let expected = try FixtureFiles.tensors(Self.directory.appendingPathComponent("expected.safetensors")).tensors
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
