import Foundation
import Testing
import Wire
@testable import Coordinator

/// The timeline's clock alignment and its file, without processes.
@Suite struct TimelineTests {
    @Test func aWorkersClockIsMovedByTheSmallestDelaySeenUntilItSettles() {
        var alignment = ClockAlignment()
        // The worker's clock is 5 s behind; one-way delays in microseconds, the 6th after settling.
        let skew: Int64 = -5_000_000
        for (i, delay) in [Int64(300), 80, 2000, 150, 90, 10].enumerated() {
            #expect(alignment.isSettled("w") == (i >= ClockAlignment.samplesToSettle))
            let sent = Int64(i + 1) * 1_000_000
            alignment.observe("w", sentMicros: sent + skew, receivedMicros: sent + delay)
        }
        #expect(alignment.coordinatorMicros(9_000_000 + skew, of: "w") == 9_000_080, "offset = skew + the shortest delay before settling")
        #expect(alignment.coordinatorMicros(7, of: "unknown") == 7)
    }

    @Test func theFileIsOneJSONArrayOfTraceEventsWithATrackPerRank() throws {
        let path = NSTemporaryDirectory() + "scvae-timeline-\(getpid())-\(UUID().uuidString.prefix(6)).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try TimelineFile(path: path)
        let report = TimelineReport(rank: 1, step: 3, sentMicros: 1_000, spans: [
            TimelineSpan(thread: .training, name: "forward/backward", startMicros: 100, durationMicros: 400),
            TimelineSpan(thread: .collectives, name: "all-reduce 1/2", startMicros: 300, durationMicros: 150),
        ])
        try file.append(report, from: "b", rank: 1, receivedMicros: 1_050)  // waits: the offset has not settled
        try file.appendCoordinatorEvent("checkpoint", seconds: 0.5, args: ["step": "3"], now: 2_000_000)
        try file.appendCoordinatorEvent("worker_down", now: 2_100_000)
        file.close()
        let events = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]])
        let names = events.filter { $0["ph"] as? String == "M" }.compactMap { ($0["args"] as? [String: String])?["name"] }
        #expect(names == ["coordinator", "rank 1", "training", "collectives"])
        let spans = events.filter { $0["ph"] as? String == "X" }
        #expect(spans.count == 3)
        let forward = try #require(spans.first { $0["name"] as? String == "forward/backward" })
        #expect(forward["ts"] as? Int == 150 && forward["dur"] as? Int == 400 && forward["pid"] as? Int == 2 && forward["tid"] as? Int == 1,
                "moved by the offset 50: \(forward)")
        let checkpoint = try #require(spans.first { $0["name"] as? String == "checkpoint" })
        #expect(checkpoint["ts"] as? Int == 1_500_000 && checkpoint["dur"] as? Int == 500_000 && checkpoint["pid"] as? Int == 0)
        #expect(events.contains { $0["ph"] as? String == "i" && $0["name"] as? String == "worker_down" })
    }
}
