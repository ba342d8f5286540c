import Foundation
import Testing

/// Deadlines of the multi-process tests, scaled by SCVAE_DEADLINE_SCALE on slow machines.
enum Deadline {
    static let scale = ProcessInfo.processInfo.environment["SCVAE_DEADLINE_SCALE"].flatMap(Double.init) ?? 1

    static func seconds(_ value: Double) -> Double { value * scale }
}

/// The built `scvae-coordinator` and `scvae-worker`: next to the test bundle (the same build
/// configuration), else in the package's .build/release or .build/debug.
enum Executables {
    static let directory: String? = {
        let fm = FileManager.default
        var candidates: [String] = []
        for start in [Bundle.main.executablePath, CommandLine.arguments.first].compactMap({ $0 }) {
            var folder = (start as NSString).deletingLastPathComponent
            for _ in 0..<4 {
                candidates.append(folder)
                folder = (folder as NSString).deletingLastPathComponent
            }
        }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        candidates += ["release", "debug"].map { "\(package)/.build/\($0)" }
        return candidates.first { folder in
            ["scvae-coordinator", "scvae-worker"].allSatisfy { fm.isExecutableFile(atPath: "\(folder)/\($0)") }
        }
    }()

    static func path(_ name: String) throws -> String {
        let folder = try #require(Executables.directory,
                                  "scvae-coordinator and scvae-worker not found next to the tests or in .build; run `swift build` first")
        return "\(folder)/\(name)"
    }
}

/// A child process whose output (stdout and stderr) goes to a log file the test reads.
final class ChildProcess {
    let process = Process()
    let logPath: String

    /// `executable` is one of ours (found by `Executables`), or a path when `absolute`.
    init(_ executable: String, _ arguments: [String], log: String, environment: [String: String] = [:],
         absolute: Bool = false) throws {
        logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.executableURL = URL(fileURLWithPath: absolute ? executable : try Executables.path(executable))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the exit; kills the process and records an issue at the deadline. Returns the status.
    @discardableResult
    func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(seconds))
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("\(process.executableURL?.lastPathComponent ?? "process") still running after \(Deadline.seconds(seconds)) s; killed. Output:\n\(output.suffix(4000))")
            return nil
        }
        return process.terminationStatus
    }

    /// Waits until the output contains `text`; false at the deadline or if the process exited first.
    func waitForOutput(_ text: String, seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(seconds))
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }
}

/// A fresh folder per test, and one sample-data cache shared by the suite (generated once).
enum Scratch {
    static let cache = NSTemporaryDirectory() + "scvae-process-tests-cache"

    static func folder(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "scvae-\(name)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
