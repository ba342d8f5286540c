import BuildInfo
import Foundation
import Testing

/// The commit a build reports (scripts/git-commit.sh, run by the GitCommit plugin).
@Suite struct BuildInfoTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/git-commit.sh").path

    /// Runs `command` with its output discarded; its exit status.
    @discardableResult
    static func run(_ command: String, _ arguments: [String], in folder: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// What the script generates for `folder`: the value of `gitCommit`.
    static func generatedCommit(of folder: String) throws -> String {
        let output = folder + "/generated/GitCommit.swift"
        #expect(try run("/bin/sh", [script, folder, output], in: folder) == 0)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("let gitCommit = ") })
        return String(line.dropFirst("let gitCommit = \"".count).dropLast())
    }

    static func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "scvae-git-commit-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func thisBuildsCommitIsAShortHashOrUnknown() {
        let commit = BuildInfo.commit
        let hash = commit.hasSuffix("-dirty") ? String(commit.dropLast("-dirty".count)) : commit
        #expect(commit == "unknown" || (hash.count >= 7 && hash.allSatisfy(\.isHexDigit)), "\(commit)")
        #expect(BuildInfo.description == "\(BuildInfo.version) (commit \(commit))")
    }

    @Test func aFolderOutsideGitIsUnknown() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(try Self.generatedCommit(of: folder) == "unknown")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git")))
    func aCheckoutIsItsShortHashAndDirtyOnceATrackedFileChanges() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let git = "/usr/bin/git"
        try Self.run(git, ["init", "-q"], in: folder)
        try "one\n".write(toFile: folder + "/file.txt", atomically: true, encoding: .utf8)
        try Self.run(git, ["add", "file.txt"], in: folder)
        #expect(try Self.run(git, ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one"], in: folder) == 0)
        let pipe = Pipe()
        let revParse = Process()
        revParse.executableURL = URL(fileURLWithPath: git)
        revParse.arguments = ["-C", folder, "rev-parse", "--short", "HEAD"]
        revParse.standardOutput = pipe
        try revParse.run()
        revParse.waitUntilExit()
        let hash = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        // The generated file is untracked, and untracked files do not make a tree dirty.
        #expect(try Self.generatedCommit(of: folder) == hash)
        try "two\n".write(toFile: folder + "/file.txt", atomically: true, encoding: .utf8)
        #expect(try Self.generatedCommit(of: folder) == hash + "-dirty")
    }
}
