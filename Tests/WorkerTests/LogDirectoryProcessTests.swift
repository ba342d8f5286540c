import Foundation
import Testing

/// JSON log lines, as a test reads them.
private func jsonRecords(_ text: String) -> [[String: Any]]? {
    var records: [[String: Any]] = []
    for line in text.split(separator: "\n") {
        guard let record = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
        records.append(record)
    }
    return records
}

extension ProcessTests {
    /// --log-dir: each --local worker's output goes to DIR/<worker-id>.log, appended to by the
    /// next run; the workers log in the coordinator's --log-format and at its --log-level.
    @Test func withLogDirEachLocalWorkerAppendsToItsOwnFileInTheCoordinatorsFormat() throws {
        let folder = try Scratch.folder("log-dir")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let logs = "\(folder)/logs"
        for (round, steps) in [(1, "2"), (2, "1")] {
            let run = try Self.coordinator(["--workers", "2", "--steps", steps, "--global-batch", "4", "--log-dir", logs,
                                            "--log-format", "json", "--log-level", "debug"],
                                           folder: "\(folder)/run\(round)".created())
            let status = run.waitForExit(seconds: 240)
            let output = run.output
            #expect(status == 0, "\(output.suffix(4000))")
            let records = try #require(jsonRecords(output), "every line of the coordinator is JSON:\n\(output.suffix(4000))")
            #expect(records.contains { ($0["message"] as? String)?.contains("step \(steps)/\(steps)") == true })
            #expect(records.allSatisfy { $0["label"] as? String == "scvae.coordinator" }, "no worker line on the coordinator's terminal")
            #expect(output.contains("\(logs)/<worker-id>.log"), "the coordinator says where the workers' output goes")
        }
        for id in ["local-0", "local-1"] {
            let text = try String(contentsOfFile: "\(logs)/\(id).log", encoding: .utf8)
            let records = try #require(jsonRecords(text), "every line of \(id).log is JSON:\n\(text.suffix(3000))")
            let metadata = records.compactMap { $0["metadata"] as? [String: String] }
            #expect(metadata.contains { $0["role"] == "worker" })
            #expect(records.contains { $0["level"] as? String == "debug" }, "\(id) logs at debug, the coordinator's level")
            let welcomes = records.filter { ($0["message"] as? String)?.contains("welcomed by the coordinator") == true }
            #expect(welcomes.count == 2, "both runs of \(id) in its one file, the second appended:\n\(text.suffix(3000))")
        }
        let summary = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/run2/final/summary.json"))) as? [String: Any])
        #expect(summary["commit"] is String && summary["version"] is String && summary["steps"] as? Int == 1, "\(summary)")
    }
}

private extension String {
    /// This path, created as a folder.
    func created() throws -> String {
        try FileManager.default.createDirectory(atPath: self, withIntermediateDirectories: true)
        return self
    }
}
