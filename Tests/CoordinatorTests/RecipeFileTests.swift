@testable import Coordinator
import Foundation
import Testing
import Wire

/// `--recipe FILE`: a YAML or JSON file of training options turned into the arguments it stands
/// for, in front of the command line's; and `DIR/recipe.yaml`, the resolved recipe of a run.
@Suite struct RecipeFileTests {
    private func arguments(_ yaml: String) throws -> [String] {
        try RecipeFile.arguments(yaml: yaml, path: "r.yaml")
    }

    private func problem(_ yaml: String) -> RecipeFile.Problem? {
        do { _ = try RecipeFile.arguments(yaml: yaml, path: "r.yaml"); return nil } catch { return error }
    }

    @Test func valuesAndFlagsBecomeArgumentsInTheFilesOrder() throws {
        let yaml = """
            # a comment
            config: small
            global-batch: 64
            lr: 4.0e-05
            latent-weight: auto
            exact-reduction: true
            data: "/data/my images"
            """
        #expect(try arguments(yaml) == ["--config=small", "--global-batch=64", "--lr=4.0e-05", "--latent-weight=auto",
                                        "--exact-reduction", "--data=/data/my images"])
        #expect(try arguments("exact-reduction: false\n") == ["--no-exact-reduction"])
        // A null leaves the default; an empty file sets nothing.
        #expect(try arguments("steps: ~\nepochs: null\nseed: 3\n") == ["--seed=3"])
        #expect(try arguments("") == [])
        // The string "null", quoted, is a value.
        #expect(try arguments("optimizer: \"null\"\n") == ["--optimizer=null"])
    }

    @Test func jsonIsARecipeToo() throws {
        #expect(try arguments(#"{"steps": 200, "beta": 0.5, "exact-reduction": false}"#)
                == ["--steps=200", "--beta=0.5", "--no-exact-reduction"])
    }

    @Test func problemsNameTheFileAndTheKey() throws {
        let unknown = try #require(problem("lr: 1e-4\nlearning-rate: 1e-4\n"))
        #expect(unknown == .unknownKey(path: "r.yaml", key: "learning-rate"))
        #expect(unknown.description.contains("r.yaml") && unknown.description.contains("'learning-rate'")
                && unknown.description.contains("global-batch"))
        // Deployment options are not recipe keys.
        #expect(problem("listen: tcp://0.0.0.0:5555\n") == .unknownKey(path: "r.yaml", key: "listen"))
        #expect(problem("workers: 4\n") == .unknownKey(path: "r.yaml", key: "workers"))
        guard case let .malformed(_, duplicate)? = problem("steps: 3\nsteps: 4\n") else {
            Issue.record("a key given twice is refused"); return
        }
        #expect(duplicate.contains("'steps'"), "\(duplicate)")
        #expect(problem("steps: [1, 2]\n") == .notAValue(path: "r.yaml", key: "steps"))
        #expect(problem("lr:\n  value: 1\n") == .notAValue(path: "r.yaml", key: "lr"))
        #expect(problem("exact-reduction: sometimes\n") == .notABoolean(path: "r.yaml", key: "exact-reduction", value: "sometimes"))
        #expect(problem("- steps\n- 3\n") == .notAMapping(path: "r.yaml"))
        #expect(problem("just text\n") == .notAMapping(path: "r.yaml"))
        guard case let .malformed(path, reason)? = problem("steps: 3\n  x: : y\n") else {
            Issue.record("a YAML syntax error is reported as malformed"); return
        }
        #expect(path == "r.yaml" && reason.contains("2:"), "the reason gives the line: \(reason)")
    }

    @Test func theCommandLineOverridesTheFile() throws {
        let files = ["r.yaml": "steps: 100\nlr: 1e-4\nseed: 7\n"]
        func expand(_ commandLine: [String]) throws -> [String] {
            try RecipeFile.expand(commandLine) { path in
                guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
                return text
            }
        }
        // The file's arguments come first, so a later --seed (the command line's) counts.
        #expect(try expand(["--recipe", "r.yaml", "--seed", "9"]) == ["--steps=100", "--lr=1e-4", "--seed=7", "--recipe", "r.yaml", "--seed", "9"])
        #expect(try expand(["--recipe=r.yaml"]) == ["--steps=100", "--lr=1e-4", "--seed=7", "--recipe=r.yaml"])
        // --epochs on the command line replaces the file's steps (both would be refused).
        #expect(try expand(["--epochs", "2", "--recipe", "r.yaml"]) == ["--lr=1e-4", "--seed=7", "--epochs", "2", "--recipe", "r.yaml"])
        // Without --recipe (or after --) nothing changes.
        #expect(try expand(["--steps", "3"]) == ["--steps", "3"])
        #expect(try expand(["--", "--recipe", "r.yaml"]) == ["--", "--recipe", "r.yaml"])
        do {
            _ = try expand(["--recipe", "missing.yaml"])
            Issue.record("a missing recipe is an error")
        } catch let error as RecipeFile.Problem {
            guard case let .unreadable(path, _) = error else { Issue.record("\(error)"); return }
            #expect(path == "missing.yaml")
        }
    }

    @Test func readFileSaysWhyAFileCannotBeRead() throws {
        let folder = NSTemporaryDirectory() + "scvae-recipe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func reason(_ path: String) -> String {
            do { _ = try RecipeFile.readFile(path); return "" } catch { return "\(error)" }
        }
        #expect(reason(folder + "/none.yaml") == "no such file")
        #expect(reason(folder) == "it is a folder")
        FileManager.default.createFile(atPath: folder + "/latin1.yaml", contents: Data([0x73, 0x3A, 0x20, 0xE9, 0xFF]))
        #expect(reason(folder + "/latin1.yaml") == "not UTF-8 text")
        FileManager.default.createFile(atPath: folder + "/ok.yaml", contents: Data("seed: 1\n".utf8))
        #expect(try RecipeFile.readFile(folder + "/ok.yaml") == "seed: 1\n")
    }

    @Test func theRenderedRecipeReadsBackToTheSameOptions() throws {
        var settings = CoordinatorSettings()
        settings.dataPath = "images"
        settings.config = "small"
        settings.beta = 0.5
        settings.latentWeight = .auto
        settings.globalBatch = 64
        settings.steps = nil
        settings.epochs = 3
        settings.learningRate = 4e-5
        settings.exactReduction = true
        settings.validationDataPath = "/val"
        settings.validationEvery = 250
        settings.bestMetric = .psnr
        let text = RecipeFile.render(settings, currentDirectory: "/home/me")
        let read = try arguments(text)
        #expect(read.contains("--data=/home/me/images"), "a relative path is made absolute: \(read)")
        for expected in ["--config=small", "--beta=0.5", "--latent-weight=auto", "--global-batch=64", "--epochs=3",
                         "--lr=4.0e-05", "--exact-reduction", "--val-data=/val", "--val-every=250", "--best-metric=psnr",
                         "--micro-batch=16", "--seed=0", "--keep=3"] {
            #expect(read.contains(expected), "\(expected) in \(read)")
        }
        #expect(!read.contains { $0.hasPrefix("--steps") || $0.hasPrefix("--val-images") }, "options without a value are left out: \(read)")
        // Every key is written except the ones these settings leave unset.
        let written = Set(read.map { String($0.dropFirst(2).prefix { $0 != "=" }) })
        let unset: Set = ["steps", "val-images"]
        #expect(written == Set(RecipeFile.keys.map(\.name)).subtracting(unset))
        // The sample data is written as a comment, not a key.
        settings.dataPath = nil
        #expect(try !arguments(RecipeFile.render(settings, currentDirectory: "/")).contains { $0.hasPrefix("--data") })
    }

    @Test func numbersAreWrittenAsYAMLFloats() {
        #expect(RecipeFile.number(4e-5) == "4.0e-05")
        #expect(RecipeFile.number(0.5) == "0.5")
        #expect(RecipeFile.number(1) == "1.0")
        #expect(RecipeFile.number(1.5e-7) == "1.5e-07")
    }
}
