import TensorFiles
import Dataset
import Foundation
import Model
import Testing
@testable import Worker

/// The `scvae grad` path end to end: fixture weights and batch from the PyTorch reference script
/// (Tests/Fixtures/tiny), gradients written as safetensors, read back and compared.
@Suite struct WeightsAndGradientsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/tiny").path

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("scvae-\(UUID().uuidString)-\(name)").path
    }

    @Test func gradientsWrittenAsSafetensorsMatchTheReference() throws {
        let layout = ParameterLayout(config: .tiny)
        let loaded = try WeightsFile.load("\(Self.fixtures)/weights.safetensors", layout: layout)
        #expect(loaded.unknownNames.isEmpty)
        let batch = try ImageBatch.load("\(Self.fixtures)/input.npy", size: 32)
        #expect(batch.count == 2)
        let result = BatchGradients(config: .tiny, parameters: loaded.parameters, images: batch)
        let out = Self.temporaryPath("grads.safetensors")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try WeightsFile.save(result.gradients, layout: layout, to: out, metadata: result.metadata)

        let written = try SafeTensors.read(out)
        let reference = try SafeTensors.read("\(Self.fixtures)/grads.safetensors")
        for key in ["loss", "recon", "latent", "sparsity"] {
            let ours = try #require(Double(written.metadata[key] ?? ""), "metadata lacks \(key)")
            let theirs = try #require(Double(reference.metadata[key] ?? ""))
            #expect(abs(ours - theirs) <= 1e-5 * abs(theirs), "\(key): \(ours) vs \(theirs)")
        }
        #expect(Set(written.tensors.map(\.name)) == Set(reference.tensors.map(\.name)))
        let globalScale = try reference.tensors.map { try $0.floats().map { abs($0) }.max() ?? 0 }.max() ?? 0
        for tensor in reference.tensors {
            let expected = try tensor.floats()
            let ours = try #require(written[tensor.name]).floats()
            #expect(written[tensor.name]?.shape == tensor.shape)
            let diff = zip(ours, expected).map { abs($0 - $1) }.max() ?? 0
            let scale = expected.map { abs($0) }.max() ?? 0
            #expect(diff <= 1e-4 * scale + 1e-6 * globalScale,
                    "\(tensor.name): max diff \(diff), scale \(scale); first \(Array(ours.prefix(3))) vs \(Array(expected.prefix(3)))")
        }
    }

    @Test func unknownTensorsAreReportedAndAMissingOneIsAnErrorNamingIt() throws {
        let layout = ParameterLayout(config: .tiny)
        let loaded = try WeightsFile.load("\(Self.fixtures)/weights.safetensors", layout: layout)
        var tensors = WeightsFile.namedTensors(loaded.parameters, layout: layout)
        // The authors' checkpoints carry extras this model does not use.
        tensors.append(NamedTensor(name: "el1.weight", shape: [2], floats: [1, 2]))
        tensors.append(NamedTensor(name: "w", shape: [1], dtype: .I64, data: [UInt8](repeating: 0, count: 8)))
        let extra = Self.temporaryPath("extra.safetensors")
        defer { try? FileManager.default.removeItem(atPath: extra) }
        try SafeTensors.write(tensors, to: extra)
        let withExtras = try WeightsFile.load(extra, layout: layout)
        #expect(withExtras.unknownNames == ["el1.weight", "w"])
        #expect(withExtras.parameters == loaded.parameters)

        let missing = Self.temporaryPath("missing.safetensors")
        defer { try? FileManager.default.removeItem(atPath: missing) }
        try SafeTensors.write(tensors.filter { $0.name != "decoder.conv_out.bias" }, to: missing)
        let error = #expect(throws: WeightsFileError.self) { try WeightsFile.load(missing, layout: layout) }
        #expect("\(error!)".contains("decoder.conv_out.bias"), "\(error!)")

        let wrongShape = Self.temporaryPath("shape.safetensors")
        defer { try? FileManager.default.removeItem(atPath: wrongShape) }
        let reshaped = tensors.map { $0.name == "Dict" ? NamedTensor(name: "Dict", shape: [128, 64], floats: try! $0.floats()) : $0 }
        try SafeTensors.write(reshaped, to: wrongShape)
        let shapeError = #expect(throws: WeightsFileError.self) { try WeightsFile.load(wrongShape, layout: layout) }
        #expect("\(shapeError!)".contains("Dict"), "\(shapeError!)")
    }
}
