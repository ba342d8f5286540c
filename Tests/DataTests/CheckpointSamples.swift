import Foundation
@testable import TensorFiles
@testable import Checkpoints

/// Small fake checkpoints: four tensors in an order that is not alphabetical (so reading must
/// restore it), values that differ by step and include bit patterns a float comparison would
/// blur (negative zero, a NaN payload, a subnormal).
enum CheckpointSamples {
    static let shapes: [(name: String, shape: [Int])] = [
        ("encoder.conv_in.weight", [2, 3, 1, 1]), ("Dict", [3, 4]), ("c", [1]), ("decoder.conv_out.bias", [3]),
    ]

    static func state(step: Int, config: String = "tiny") -> CheckpointState {
        CheckpointState(step: step, epoch: step / 10, cursorEpoch: (step + 1) / 10, cursorStep: (step + 1) % 10,
                        optimizerStep: step, worldSize: 2, config: config, globalBatch: 16, seed: UInt64.max - 7,
                        datasetFingerprint: "f1ngerpr1nt", codeVersion: "test-1",
                        recipeJSON: #"{"lr":0.0001,"note":"quotes \" and \\ survive"}"#, rng: "keyed-splitmix64")
    }

    static func tensor(_ name: String, _ shape: [Int], step: Int, salt: Int) -> NamedTensor {
        let count = shape.reduce(1, *)
        var values = (0..<count).map { Float(step * 100 + salt * 10 + $0) * 0.125 - 3 }
        let specials: [Float] = [-0.0, Float(nan: 0x1234, signaling: false), .leastNonzeroMagnitude]
        for (i, special) in specials.enumerated() where i < count { values[i] = special }
        return NamedTensor(name: name, shape: shape, floats: values)
    }

    static func checkpoint(step: Int, config: String = "tiny", salt: Int = 0) -> Checkpoint {
        let model = shapes.enumerated().map { tensor($1.name, $1.shape, step: step, salt: salt + $0) }
        let optimizer = shapes.enumerated().flatMap { i, entry in
            [tensor("m." + entry.name, entry.shape, step: step, salt: salt + 5 + i),
             tensor("v." + entry.name, entry.shape, step: step, salt: salt + 9 + i)]
        }
        return Checkpoint(state: state(step: step, config: config), model: model, optimizer: optimizer)
    }

    /// Writes checkpoints of these steps into a fresh store.
    static func store(_ directory: TemporaryDirectory, steps: [Int], keep: Int = 3) throws -> CheckpointStore {
        let store = CheckpointStore(directory: directory.path, keep: keep)
        for step in steps { try store.write(checkpoint(step: step)) }
        return store
    }

    static func names(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }
}

/// Reads a file, lets `change` alter its bytes, writes it back.
func alterFile(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
    var bytes = try BinaryFile.read(path)
    change(&bytes)
    try BinaryFile.writeAtomically(bytes, to: path)
}

/// The error `body` throws, nil if it returns.
func checkpointError<T>(_ body: () throws(CheckpointError) -> T) -> CheckpointError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
