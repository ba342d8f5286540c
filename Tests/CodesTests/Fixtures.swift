import Foundation
import Model
import TensorFiles

/// The tiny PyTorch reference fixture (Tests/Fixtures/tiny, written by
/// scripts/reference/scvae_reference.py): its weights, input batch and forward outputs.
enum TinyFixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny")
    static var weightsPath: String { folder.appendingPathComponent("weights.safetensors").path }

    /// The fixture's weights as the flat parameters of the tiny layout.
    static func parameters() throws -> [Float] {
        let layout = ParameterLayout(config: .tiny)
        let file = try SafeTensors.read(weightsPath)
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        for entry in layout.entries {
            guard let tensor = file[entry.name] else { throw FixtureError("fixture lacks \(entry.name)") }
            let values = try tensor.floats()
            guard values.count == entry.count else { throw FixtureError("\(entry.name) has \(values.count) values") }
            parameters.replaceSubrange(entry.range, with: values)
        }
        return parameters
    }

    /// The input batch, NCHW [2, 3, 32, 32] in [-1, 1].
    static func images() throws -> [Float] {
        try NPY.read(folder.appendingPathComponent("input.npy").path).values
    }

    /// The reference model's codes [B * P, K] for that input.
    static func codes() throws -> (shape: [Int], values: [Float]) {
        let tensor = try SafeTensors.read(folder.appendingPathComponent("outputs.safetensors").path).tensor(named: "codes")
        return (tensor.shape, try tensor.floats())
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Largest absolute value and largest absolute difference, for comparisons relative to a tensor's scale.
func maxAbs(_ values: [Float]) -> Float { values.reduce(0) { max($0, abs($1)) } }
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

/// The error `body` throws, or nil when it returns.
func thrownError(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}
