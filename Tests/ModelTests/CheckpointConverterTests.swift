import Foundation
import Testing
@testable import Model

/// scripts/convert_pytorch_checkpoint.py on checkpoints laid out as the authors' trainer saves them
/// (`scvae_reference.py authors-checkpoint`). Needs python3 with torch; skipped without it (CI).
@Suite(.enabled(if: PythonScripts.torchAvailable, "python3 with torch is not installed"))
struct CheckpointConverterTests {
    @Test func aTrainingCheckpointBecomesTheSameWeights() throws {
        let folder = try PythonScripts.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tiny = FixtureFiles.folder("tiny").appendingPathComponent("weights.safetensors").path
        let checkpoint = folder.appendingPathComponent("epoch0_model.pt").path
        let converted = folder.appendingPathComponent("model.safetensors").path
        // DistributedDataParallel's `module.` prefix, the authors' extra tensors, c as a scalar.
        try PythonScripts.run("reference/scvae_reference.py", ["authors-checkpoint", "--config", "tiny", "--weights", tiny,
                                                               "--out", checkpoint, "--scalar-c"]).expectSuccess()
        let result = try PythonScripts.run("convert_pytorch_checkpoint.py", ["--config", "tiny", checkpoint, converted])
        result.expectSuccess()
        #expect(result.output.contains("dropped 21 tensors"), "\(result.output)")

        let expected = try FixtureFiles.tensors(URL(fileURLWithPath: tiny)).tensors
        let (ours, metadata) = try FixtureFiles.tensors(URL(fileURLWithPath: converted))
        #expect(Set(ours.keys) == Set(expected.keys))
        for (name, tensor) in expected { #expect(ours[name] == tensor, "\(name) differs after conversion") }
        #expect(metadata["config"] == "tiny" && metadata["format"] == "pt")
        let layout = ParameterLayout(config: .tiny)
        var buffer = [Float](repeating: .nan, count: layout.totalCount)
        let unknown = try buffer.withUnsafeMutableBufferPointer { try loadParameters(ours, into: $0, layout: layout) }
        #expect(unknown.isEmpty && !buffer.contains { $0.isNaN })
    }

    @Test(arguments: [
        (["--drop", "decoder.up.1.upsample.conv.bias"], "decoder.up.1.upsample.conv.bias"),
        (["--misshape", "Dict"], "Dict"),
        (["--unknown", "encoder.down.0.extra.weight"], "encoder.down.0.extra.weight"),
    ])
    func refusesNamingTheKey(spoil: [String], key: String) throws {
        let folder = try PythonScripts.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tiny = FixtureFiles.folder("tiny").appendingPathComponent("weights.safetensors").path
        let checkpoint = folder.appendingPathComponent("bad.pt").path
        let converted = folder.appendingPathComponent("bad.safetensors").path
        try PythonScripts.run("reference/scvae_reference.py", ["authors-checkpoint", "--config", "tiny", "--weights", tiny,
                                                               "--out", checkpoint] + spoil).expectSuccess()
        let result = try PythonScripts.run("convert_pytorch_checkpoint.py", ["--config", "tiny", checkpoint, converted])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("error:") && result.output.contains(key), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: converted))
    }

    @Test func aBareStateDictForAnotherConfigurationIsRefused() throws {
        let folder = try PythonScripts.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tiny = FixtureFiles.folder("tiny").appendingPathComponent("weights.safetensors").path
        let checkpoint = folder.appendingPathComponent("last.pt").path
        try PythonScripts.run("reference/scvae_reference.py", ["authors-checkpoint", "--config", "tiny", "--weights", tiny,
                                                               "--out", checkpoint, "--bare", "--prefix", ""]).expectSuccess()
        let wrong = try PythonScripts.run("convert_pytorch_checkpoint.py",
                                          ["--config", "small", checkpoint, folder.appendingPathComponent("s.safetensors").path])
        #expect(wrong.status == 1 && wrong.output.contains("encoder.conv_in.weight: shape [32, 3, 3, 3], small needs [64, 3, 3, 3]"), "\(wrong.output)")
        try PythonScripts.run("convert_pytorch_checkpoint.py",
                              ["--config", "tiny", checkpoint, folder.appendingPathComponent("t.safetensors").path]).expectSuccess()
    }
}

/// Runs the repository's Python scripts (scripts/...).
enum PythonScripts {
    static let scripts = FixtureFiles.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts")

    struct Result {
        var status: Int32
        /// Standard output and standard error together.
        var output: String
        func expectSuccess(sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(status == 0, "exit \(status): \(output)", sourceLocation: sourceLocation)
        }
    }

    static let torchAvailable: Bool = (try? run(arguments: ["-c", "import torch, numpy"]).status == 0) ?? false

    static func run(_ script: String, _ arguments: [String]) throws -> Result {
        try run(arguments: [scripts.appendingPathComponent(script).path] + arguments)
    }

    static func run(arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("scvae-convert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
