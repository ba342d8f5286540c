import Foundation
import Testing
@testable import Model

/// Compares forwardBackward with the PyTorch reference on the tiny fixture (weights, input,
/// outputs and gradients written by the reference script).
///
/// The fixture directory is `Tests/Fixtures/tiny` of this package, or `$SCVAE_TINY_FIXTURE`; the
/// test is skipped when neither exists (the fixtures come from the reference branch).
@Suite struct ReferenceFixtureTests {
    static var directory: URL? {
        let candidates = [
            ProcessInfo.processInfo.environment["SCVAE_TINY_FIXTURE"].map { URL(fileURLWithPath: $0) },
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/tiny"),
        ]
        return candidates.compactMap { $0 }.first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("grads.safetensors").path)
        }
    }

    /// Reads float32 tensors from a safetensors file (8-byte little-endian header length, JSON header, data).
    static func readSafetensors(_ url: URL) throws -> (tensors: [String: (shape: [Int], values: [Float])], metadata: [String: String]) {
        let data = try Data(contentsOf: url)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            let info = value as! [String: Any]
            if name == "__metadata__" { metadata = info as! [String: String]; continue }
            #expect(info["dtype"] as? String == "F32", "\(name) is not F32")
            let offsets = info["data_offsets"] as! [Int]
            let bytes = data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            tensors[name] = (info["shape"] as! [Int], values)
        }
        return (tensors, metadata)
    }

    /// Reads a little-endian float32 C-order .npy file (version 1 header).
    static func readNpy(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        return data.subdata(in: (10 + headerLength)..<data.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test(.enabled(if: directory != nil, "tiny fixture not present"))
    func tinyGradientsMatchPyTorch() throws {
        let directory = try #require(Self.directory)
        let weights = try Self.readSafetensors(directory.appendingPathComponent("weights.safetensors")).tensors
        let (grads, metadata) = try Self.readSafetensors(directory.appendingPathComponent("grads.safetensors"))
        let images = try Self.readNpy(directory.appendingPathComponent("input.npy"))
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
