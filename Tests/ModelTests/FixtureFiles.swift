import TensorFiles
import Foundation
@testable import Model

/// The PyTorch reference fixtures committed under Tests/Fixtures (scripts/reference/scvae_reference.py
/// writes them), read with the project's own safetensors and .npy codecs.
enum FixtureFiles {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// A fixture folder: `SCVAE_<NAME>_FIXTURE` if set, else Tests/Fixtures/NAME.
    static func folder(_ name: String) -> URL {
        if let override = ProcessInfo.processInfo.environment["SCVAE_\(name.uppercased())_FIXTURE"] {
            return URL(fileURLWithPath: override)
        }
        return root.appendingPathComponent(name)
    }

    /// Float32 tensors by name, and the file's metadata.
    static func tensors(_ url: URL) throws -> (tensors: [String: TensorValues], metadata: [String: String]) {
        let file = try SafeTensors.read(url.path)
        var tensors: [String: TensorValues] = [:]
        for tensor in file.tensors { tensors[tensor.name] = TensorValues(shape: tensor.shape, values: try tensor.floats()) }
        return (tensors, file.metadata)
    }

    /// A float32 .npy array.
    static func array(_ url: URL) throws -> NPYArray {
        try NPY.read(url.path)
    }
}
