import Dataset
import Foundation
import Testing

/// The executables' command lines, run for real but with no training: `--version`, choice
/// options and their errors, log options from the environment, shell completion.
@Suite struct CommandLineTests {
    /// Runs one of our executables to its end; its status and output (stdout and stderr).
    static func run(_ executable: String, _ arguments: [String],
                    environment: [String: String] = [:]) throws -> (status: Int32?, output: String) {
        let folder = try Scratch.folder("cli")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let child = try ChildProcess(executable, arguments, log: "\(folder)/output", environment: environment)
        let status = child.waitForExit(seconds: 60)
        return (status, child.output)
    }

    @Test func everyExecutablePrintsTheSameVersionWithItsCommit() throws {
        let versions = try ["scvae", "scvae-coordinator", "scvae-worker"].map { name in
            let (status, output) = try Self.run(name, ["--version"])
            #expect(status == 0, "\(name): \(output)")
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(Set(versions).count == 1, "\(versions)")
        let version = try #require(versions.first)
        let commit = try #require(version.split(separator: "(commit ").last).dropLast()
        let hash = commit.hasSuffix("-dirty") ? commit.dropLast("-dirty".count) : commit
        #expect(commit == "unknown" || (hash.count >= 7 && hash.allSatisfy(\.isHexDigit)), "\(version)")
    }

    /// The index benchmark lists a folder twice: the first load writes the index cache, the
    /// repeat reuses it, both finding every image and the same fingerprint.
    @Test func theIndexBenchmarkWritesThenReusesTheCache() throws {
        let folder = try Scratch.folder("bench-index")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (wnid, count) in [("n01", 3), ("n02", 2)] {
            try FileManager.default.createDirectory(atPath: "\(folder)/data/\(wnid)", withIntermediateDirectories: true)
            for i in 0..<count { FileManager.default.createFile(atPath: "\(folder)/data/\(wnid)/\(wnid)_\(i).JPEG", contents: Data([0xFF, 0xD8])) }
        }
        let (status, output) = try Self.run("scvae", ["bench", "index", "--data", "\(folder)/data", "--cache-dir", "\(folder)/cache", "--repeats", "1"])
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n").filter { $0.contains("images, fingerprint") }
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains(": 5 images") }, "\(output)")
        #expect(lines.first?.contains("cache written") == true && lines.last?.contains("cache reused") == true, "\(output)")
    }

    /// The shard reading benchmark reads the same images in both orders, the windowed one in
    /// far fewer requests.
    @Test func theShardBenchmarkReadsTheSameImagesInFewerRequests() throws {
        let folder = try Scratch.folder("bench-shards")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = try SampleData.ensure(at: "\(folder)/source", count: 40, size: 32, seed: 3)
        _ = try ShardPacker.pack(try DatasetIndex.scan(root: images), to: "\(folder)/shards", size: 32, maximumShardBytes: 24 << 10)
        let (status, output) = try Self.run("scvae", ["bench", "shards", "--data", "\(folder)/shards", "--shard-window", "2",
                                                      "--global-batch", "8", "--rounds", "1"])
        #expect(status == 0, "\(output)")
        func figures(_ label: String) -> (images: Int, requests: Int)? {
            guard let line = output.split(separator: "\n").first(where: { $0.contains(label) }),
                  let images = line.firstMatch(of: /\((\d+) images/)?.1, let requests = line.firstMatch(of: /; (\d+) requests/)?.1 else { return nil }
            return (Int(images)!, Int(requests)!)
        }
        let global = try #require(figures("global order"), "\(output)")
        let windows = try #require(figures("windows of 2"), "\(output)")
        #expect(global.images == 40 && windows.images == 40 && global.requests == 40, "\(output)")
        #expect(windows.requests < 10, "\(output)")
    }

    @Test(arguments: [
        (["--config", "huge"], ["tiny", "small", "imagenet-f8", "imagenet-f16"]),
        (["--optimizer", "adamw"], ["adam", "sgd"]),
        (["--schedule", "linear"], ["constant", "cosine"]),
        (["--ring-transport", "rdma"], ["tcp", "auto", "shm"]),
        (["--log-level", "loud"], ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
        (["--log-format", "xml"], ["text", "json"]),
    ])
    func aBadChoiceIsRefusedListingTheValidOnes(arguments: [String], valid: [String]) throws {
        let (status, output) = try Self.run("scvae-coordinator", arguments)
        #expect(status != nil && status != 0)
        #expect(output.contains(arguments[0]), "names the option: \(output)")
        // ArgumentParser lists a few values as 'a', 'b' or 'c', and many one per line as "  - a".
        for value in valid {
            #expect(output.contains("'\(value)'") || output.contains("  - \(value)\n"), "lists \(value): \(output)")
        }
    }

    @Test func aBadLogVariableIsRefusedByEveryExecutable() throws {
        for (name, arguments) in [("scvae-coordinator", []), ("scvae-worker", []), ("scvae", ["info"])] {
            let (status, output) = try Self.run(name, arguments, environment: ["SCVAE_LOG_LEVEL": "loud"])
            #expect(status != nil && status != 0, "\(name)")
            #expect(output.contains("SCVAE_LOG_LEVEL='loud'") && output.contains("warning"), "\(name): \(output)")
        }
    }

    @Test func logDirWithoutLocalIsRefused() throws {
        let (status, output) = try Self.run("scvae-coordinator", ["--log-dir", "/tmp/nowhere"])
        #expect(status != nil && status != 0)
        #expect(output.contains("--log-dir") && output.contains("--local"), "\(output)")
    }

    @Test func theBashCompletionOfTheCoordinatorListsTheChoices() throws {
        let (status, output) = try Self.run("scvae-coordinator", ["--generate-completion-script", "bash"])
        #expect(status == 0, "\(output.prefix(2000))")
        // Each option's values are offered together, on one line of the script.
        let lines = output.split(separator: "\n")
        for values in [["tiny", "small", "imagenet-f8", "imagenet-f16"], ["adam", "sgd"], ["constant", "cosine"],
                       ["tcp", "auto", "shm"], ["text", "json"]] {
            let offered = lines.contains { line in values.allSatisfy { line.contains("'\($0)'") } }
            #expect(offered, "the completion offers \(values)")
        }
    }

    @Test func scvaeInfoPrintsTheVersion() throws {
        let (_, version) = try Self.run("scvae", ["--version"])
        let (status, output) = try Self.run("scvae", ["info"])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("scvae \(version.trimmingCharacters(in: .whitespacesAndNewlines))\n"), "\(output)")
    }
}
