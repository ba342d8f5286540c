import Foundation
import Testing
import TensorFiles
@testable import Coordinator

/// Every JSON the coordinator writes goes through JSONEncoder: ids and paths with quotes,
/// backslashes, control characters and any Unicode come back as they went in.
@Suite struct JSONEscapingTests {
    static let awkward = "w\"0\\ é 雪\t\n{\"}"
    static let path = "/tmp/run \"7\"/a\\b/ü"

    static func roundTrip(_ value: some Encodable) throws -> [String: Any] {
        let directory = NSTemporaryDirectory() + "scvae-json-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try JSONLinesFile(path: directory + "/lines.jsonl")
        try file.append(value)
        try file.append(value)
        let lines = try String(contentsOfFile: file.path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2, "one line each, however the strings look")
        return try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
    }

    @Test func eventsKeepAwkwardIdsAndPaths() throws {
        let down = try Self.roundTrip(TimedRunEvent(time: 1, event: .workerDown(workers: [Self.awkward], step: 3, secondsSinceLastMessage: .nan)))
        #expect(down["event"] as? String == "worker_down" && down["workers"] as? [String] == [Self.awkward])
        #expect(down["seconds_since_last_message"] is NSNull, "JSON has no NaN")
        let checkpoint = try Self.roundTrip(TimedRunEvent(time: 2, event: .checkpoint(step: 5, path: Self.path, bytes: 9, seconds: 0.5)))
        #expect(checkpoint["path"] as? String == Self.path)
        let broke = try Self.roundTrip(TimedRunEvent(time: 3, event: .generationBroke(generation: 2, worker: Self.awkward, reason: "bad \"frame\"")))
        #expect(broke["worker"] as? String == Self.awkward && broke["reason"] as? String == "bad \"frame\"")
    }

    @Test func theSummaryKeepsAnAwkwardWeightsPath() throws {
        var settings = CoordinatorSettings()
        settings.config = "tiny"
        let summary = RunSummary(settings: settings, outcome: (path: Self.path, step: 4, epoch: 0), plannedSteps: 4, seconds: 2, last: nil)
        let directory = NSTemporaryDirectory() + "scvae-summary-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try summary.write(to: directory + "/summary.json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json"))) as? [String: Any])
        #expect(object["weights"] as? String == Self.path && object["loss"] is NSNull && object["stopped_early"] as? Bool == false)
    }

    @Test func finalWeightsChecksumMetadataIsJSONWhateverTheTensorNames() throws {
        let directory = NSTemporaryDirectory() + "scvae-final-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tensor = NamedTensor(name: Self.awkward, shape: [2], floats: [1, 2])
        let file = try FinalWeights.write([tensor], step: 1, epoch: 0, model: FinalWeights.Model(config: "tiny"), into: directory)
        let metadata = try SafeTensors.read(file).metadata
        let crc = try #require(metadata["crc32c"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(crc.utf8)) as? [String: String])
        #expect(object == [Self.awkward: String(format: "%08x", tensor.crc32c)])
    }
}
