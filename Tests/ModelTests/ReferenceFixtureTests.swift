import Foundation
import Testing
@testable import Model

/// Compares forwardBackward with the PyTorch reference on the tiny fixture (weights, input,
/// outputs and gradients written by the reference script).
///
/// The fixture directory is `Tests/Fixtures/tiny` of this package, or `$SCVAE_TINY_FIXTURE`.
@Suite struct ReferenceFixtureTests {
    @Test func tinyGradientsMatchPyTorch() throws {
        let directory = FixtureFiles.folder("tiny")
        let weights = try FixtureFiles.tensors(directory.appendingPathComponent("weights.safetensors")).tensors
        let (grads, metadata) = try FixtureFiles.tensors(directory.appendingPathComponent("grads.safetensors"))
        let images = try FixtureFiles.array(directory.appendingPathComponent("input.npy")).values
        let config = ModelConfig.tiny
        let batch = images.count / (3 * config.imageSize * config.imageSize)
        let model = SCVAEModel(config: config, maxBatch: batch)
        var parameters = [Float](repeating: 0, count: model.layout.totalCount)
        for entry in model.layout.entries {
            let tensor = try #require(weights[entry.name], "fixture lacks \(entry.name)")
            #expect(tensor.values.count == entry.count, "\(entry.name) shape \(tensor.shape)")
            for i in 0..<entry.count { parameters[entry.offset + i] = tensor.values[i] }
        }
        var gradients = [Float](repeating: 0, count: parameters.count)
        let terms = parameters.withUnsafeBufferPointer { p in
            gradients.withUnsafeMutableBufferPointer { g in
                model.forwardBackward(parameters: p, images: images, batch: batch, gradients: g, gradientScale: 1 / Float(batch))
            }
        }
        let expectedLoss = try #require(Double(metadata["loss"] ?? ""))
        let expectedRecon = try #require(Double(metadata["recon"] ?? ""))
        let expectedSparsity = try #require(Double(metadata["sparsity"] ?? ""))
        #expect(abs(terms.total / Double(batch) - expectedLoss) <= 1e-5 * expectedLoss, "loss \(terms.total / Double(batch)) vs \(expectedLoss)")
        #expect(abs(terms.recon / Double(batch) - expectedRecon) <= 1e-5 * expectedRecon)
        #expect(abs(terms.sparsity - expectedSparsity) <= 1e-6, "sparsity \(terms.sparsity) vs \(expectedSparsity)")
        let globalScale = grads.values.map { maxAbs($0.values) }.max() ?? 1
        var worst: (name: String, relative: Float) = ("", 0)
        var failures: [String] = []
        for entry in model.layout.entries {
            let expected = try #require(grads[entry.name]?.values, "fixture lacks gradient \(entry.name)")
            let ours = Array(gradients[entry.range])
            let diff = maxAbsDifference(ours, expected)
            let scale = maxAbs(expected)
            // Relative to the tensor, with an absolute floor for gradients that are zero by construction.
            let allowed = 1e-4 * scale + 1e-6 * globalScale
            if scale > 1e-3 * globalScale && diff / scale > worst.relative { worst = (entry.name, diff / scale) }
            if diff > allowed {
                failures.append("\(entry.name): max diff \(diff) (allowed \(allowed)); first \(Array(ours.prefix(3))) vs \(Array(expected.prefix(3)))")
            }
        }
        print("tiny fixture: loss \(terms.total / Double(batch)) vs \(expectedLoss); worst relative gradient difference \(worst)")
        #expect(failures.isEmpty, "\(failures.count) tensors differ:\n\(failures.joined(separator: "\n"))")
    }
}
