import TensorFiles
import Foundation
import Model
import Testing
@testable import Worker

/// `scvae grad --beta X --latent-weight X|auto` run for real: the loss follows the options (the
/// PyTorch fixture made with beta 0.5 and latent weight 0.25), and bad values are refused with a
/// sentence naming the option.
@Suite struct LossOptionsCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").path

    @Test func gradFollowsBetaAndLatentWeight() throws {
        let folder = try Scratch.folder("loss-options")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // tiny_weighted is the tiny fixture's weights with another c.
        let layout = ParameterLayout(config: .tiny)
        var parameters = try WeightsFile.load("\(Self.fixtures)/tiny/weights.safetensors", layout: layout).parameters
        let c = try #require(try SafeTensors.read("\(Self.fixtures)/tiny_weighted/weights.safetensors")["c"]).floats()
        parameters[layout.entry("c").offset] = try #require(c.first)
        try WeightsFile.save(parameters, layout: layout, to: "\(folder)/weights.safetensors", metadata: [:])

        let (status, output) = try CommandLineTests.run("scvae", [
            "grad", "--config", "tiny", "--weights", "\(folder)/weights.safetensors", "--input", "\(Self.fixtures)/tiny/input.npy",
            "--out", "\(folder)/grads.safetensors", "--beta", "0.5", "--latent-weight", "0.25"])
        #expect(status == 0, "\(output)")
        let written = try SafeTensors.read("\(folder)/grads.safetensors")
        let reference = try SafeTensors.read("\(Self.fixtures)/tiny_weighted/grads.safetensors")
        func value(_ file: SafeTensorsFile, _ key: String) throws -> Double { try #require(Double(file.metadata[key] ?? ""), "\(key)") }
        for key in ["loss", "recon", "sparsity"] {
            let ours = try value(written, key), theirs = try value(reference, key)
            #expect(abs(ours - theirs) <= 1e-5 * abs(theirs), "\(key): \(ours) vs \(theirs)")
        }
        // scvae writes the weighted latent term, the reference the unweighted one.
        let latent = try value(written, "latent"), unweighted = try value(reference, "latent")
        #expect(abs(latent - 0.25 * unweighted) <= 1e-5 * unweighted, "latent \(latent) vs 0.25 * \(unweighted)")
        let expected = try #require(reference["Dict"]).floats()
        let ours = try #require(written["Dict"]).floats()
        let scale = expected.map { abs($0) }.max() ?? 0
        let diff = zip(ours, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(scale > 0 && diff <= 1e-4 * scale, "Dict gradient: max diff \(diff), scale \(scale)")
    }

    @Test func autoWeightsTheLatentTermByOneOverTheGridSize() throws {
        let folder = try Scratch.folder("loss-auto")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, output) = try CommandLineTests.run("scvae", [
            "grad", "--config", "tiny", "--weights", "\(Self.fixtures)/tiny/weights.safetensors",
            "--input", "\(Self.fixtures)/tiny/input.npy", "--out", "\(folder)/grads.safetensors", "--latent-weight", "auto"])
        #expect(status == 0, "\(output)")
        let written = try SafeTensors.read("\(folder)/grads.safetensors")
        let reference = try SafeTensors.read("\(Self.fixtures)/tiny/grads.safetensors")
        let latent = try #require(Double(written.metadata["latent"] ?? ""))
        let unweighted = try #require(Double(reference.metadata["latent"] ?? ""))
        // tiny's latent grid is 8 x 8 x 64.
        #expect(abs(latent - unweighted / 4096) <= 1e-5 * unweighted / 4096, "latent \(latent) vs \(unweighted) / 4096")
    }

    @Test(arguments: [
        (["--beta", "0"], "--beta: beta must be a finite number greater than 0 (got 0.0)."),
        (["--beta", "-1"], "--beta: beta must be a finite number greater than 0 (got -1.0)."),
        (["--beta", "inf"], "--beta: beta must be a finite number greater than 0 (got inf)."),
        (["--latent-weight", "-0.5"], "--latent-weight: latent weight must be a finite number >= 0 or 'auto' (got -0.5)."),
        (["--latent-weight", "nan"], "--latent-weight: latent weight must be a finite number >= 0 or 'auto' (got nan)."),
        (["--latent-weight", "lots"], "--latent-weight: latent weight must be 'auto' or a number (got 'lots')."),
    ])
    func badValuesAreRefused(option: [String], message: String) throws {
        for command in ["grad", "reconstruct"] {
            let (status, output) = try CommandLineTests.run("scvae", [
                command, "--config", "tiny", "--weights", "\(Self.fixtures)/tiny/weights.safetensors",
                "--input", "\(Self.fixtures)/tiny/input.npy", "--out", "/nonexistent/out"] + option)
            #expect(status != 0 && status != nil, "\(command) \(option): \(output)")
            #expect(output.contains(message), "\(command) \(option): \(output)")
        }
    }
}
