import Foundation
import Model
import TensorFiles
import Testing
import Worker

/// `--recipe FILE` with real processes: the file's options train the run, the command line
/// overrides them, DIR/recipe.yaml reads back to the same run, beta reaches the workers' maths,
/// and a resume with other loss settings is refused.
@Suite(.serialized) struct RecipeProcessTests {
    private static func metadata(_ folder: String) throws -> [String: String] {
        try SafeTensors.read("\(folder)/final/model.safetensors").metadata
    }

    @Test func aRecipeTrainsTheRunAndItsResolvedCopyResumesIt() throws {
        let folder = try Scratch.folder("recipe")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let recipe = "\(folder)/experiment.yaml"
        try """
            # beta and the latent weight as the SC-VAE authors train
            beta: 0.5
            latent-weight: auto
            global-batch: 4
            steps: 6
            lr: 1.0e-3
            seed: 5
            """.write(toFile: recipe, atomically: true, encoding: .utf8)

        // The command line's --steps 2 overrides the file's 6.
        let run = "\(folder)/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let first = try ProcessTests.coordinator(["--workers", "1", "--recipe", recipe, "--steps", "2"], folder: run)
        #expect(first.waitForExit(seconds: 240) == 0, "\(first.output.suffix(3000))")
        let written = try String(contentsOfFile: "\(run)/recipe.yaml", encoding: .utf8)
        for line in ["beta: 0.5", "latent-weight: auto", "global-batch: 4", "steps: 2", "lr: 0.001", "seed: 5", "config: tiny"] {
            #expect(written.contains("\n\(line)\n"), "\(line) in DIR/recipe.yaml:\n\(written)")
        }
        let weights = try Self.metadata(run)
        #expect(weights["beta"] == "0.5" && weights["latent_weight"] == "auto" && weights["step"] == "2", "\(weights)")

        // The resolved recipe trains on from the checkpoint: --steps 3 resumes at step 2.
        let again = try ProcessTests.coordinator(["--workers", "1", "--recipe", "\(run)/recipe.yaml", "--steps", "3"], folder: run,
                                                 log: "again.log")
        #expect(again.waitForExit(seconds: 240) == 0, "\(again.output.suffix(3000))")
        #expect(again.output.contains("resuming from the checkpoint of step 2"), "\(again.output.suffix(3000))")
        #expect(try Self.metadata(run)["step"] == "3")

        // Another beta on the same folder is refused, naming both values.
        let other = try ProcessTests.coordinator(["--workers", "1", "--recipe", "\(run)/recipe.yaml", "--steps", "4", "--beta", "0.25"],
                                                 folder: run, log: "other.log")
        let status = other.waitForExit(seconds: 120)
        #expect(status != nil && status != 0)
        #expect(other.output.contains("beta 0.5 (this run: 0.25)"), "\(other.output.suffix(3000))")
    }

    /// The same seed and data with beta 0.5 and with the default beta train different weights:
    /// the workers use the recipe's beta, not their own default.
    @Test func betaChangesWhatTheWorkersTrain() throws {
        let common = ["--global-batch", "4", "--steps", "2", "--lr", "1e-3", "--seed", "5"]
        let plain = try ProcessTests.train(workers: 1, common, name: "beta-default")
        let half = try ProcessTests.train(workers: 1, common + ["--beta", "0.5"], name: "beta-half")
        let replay = try ProcessTests.train(workers: 1, common + ["--beta", "0.5"], name: "beta-half-again")
        #expect(half == replay, "the same settings train the same weights")
        let moved = zip(plain, half).filter { $0 != $1 }.count
        #expect(moved > plain.count / 2, "beta 0.5 changed \(moved) of \(plain.count) parameters")
    }

    @Test func aBadRecipeIsRefusedBeforeAnythingStarts() throws {
        let folder = try Scratch.folder("recipe-bad")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "steps: 3\nlearning-rate: 1e-3\n".write(toFile: "\(folder)/bad.yaml", atomically: true, encoding: .utf8)
        let (status, output) = try CommandLineTests.run("scvae-coordinator", ["--recipe", "\(folder)/bad.yaml"])
        #expect(status == 64, "\(output)")
        #expect(output.contains("bad.yaml") && output.contains("unknown key 'learning-rate'"), "\(output)")
        let (missing, said) = try CommandLineTests.run("scvae-coordinator", ["--recipe", "\(folder)/none.yaml"])
        #expect(missing == 64 && said.contains("none.yaml: cannot be read: no such file"), "\(said)")
        try "beta: -2\n".write(toFile: "\(folder)/negative.yaml", atomically: true, encoding: .utf8)
        let (negative, refused) = try CommandLineTests.run("scvae-coordinator", ["--recipe", "\(folder)/negative.yaml"])
        #expect(negative == 64 && refused.contains("--beta must be a positive number"), "\(refused)")
    }
}
