import Foundation
import Testing
@testable import Report

@Suite struct ReportTests {
    @Test func axisRangesAreRoundAndCoverTheData() {
        let (low, high, ticks) = LineChart.axisRange([0.93, 1.07])
        #expect(low <= 0.93 && high >= 1.07 && ticks.first == low && ticks.last == high)
        #expect(ticks.count >= 3 && ticks.count <= 7, "\(ticks)")
        let flat = LineChart.axisRange([5, 5])
        #expect(flat.low < 5 && flat.high > 5, "a single value gets room around it")
    }

    @Test func aSeriesIsAPolylineThroughEveryFinitePointLeftToRight() {
        let chart = LineChart(title: "loss <&>", xLabel: "step", series: [
            .init(name: "loss", color: "#123456", points: [.init(1, 1.0), .init(2, .nan), .init(3, 0.5), .init(4, 0.25)]),
        ])
        let svg = chart.svg
        #expect(svg.contains("loss &lt;&amp;&gt;") && !svg.contains("loss <&>"), "the title is escaped")
        let points = try? #require(svg.firstMatch(of: /<polyline points="([^"]*)"/)).1
        let pairs = (points ?? "").split(separator: " ").map { $0.split(separator: ",").compactMap { Double($0) } }
        #expect(pairs.count == 3, "NaN left out: \(pairs)")
        #expect(pairs.map { $0[0] } == pairs.map { $0[0] }.sorted(), "left to right")
        #expect(pairs[0][1] < pairs[2][1], "a falling loss goes down the page (SVG y grows downwards)")
    }

    @Test func metricsLinesOfARepeatedStepKeepTheLastAndBadLinesAreCounted() {
        let text = """
            {"step":1,"loss":1.0}
            {"step":2,"loss":0.9}
            {"step":2,"loss":0.8}
            {"step":3,"lo
            """
        let (steps, bad) = RunRecord.parseSteps(text)
        #expect(steps.map(\.step) == [1, 2] && steps[1].loss == 0.8 && bad == 1)
    }

    @Test func thePageIsSelfContainedAndEscapesWhatTheRunWrote() {
        let run = RunRecord(folder: "/runs/<x>", steps: [.init(step: 1, loss: 1, images_per_s: 10), .init(step: 2, loss: 0.5, images_per_s: 12)],
                            events: [.init(name: "worker_down", time: 1_700_000_000, details: [("workers", "w\"1<script>")])],
                            summary: [("steps", "2")], unreadableLines: 0)
        let html = ReportPage.render(run)
        #expect(!html.contains("<script") && html.contains("w&quot;1&lt;script&gt;"))
        #expect(!html.contains("http://") || html.components(separatedBy: "http://").count - 1 == html.components(separatedBy: "http://www.w3.org/2000/svg").count - 1,
                "no link leaves the page but the SVG namespace")
        #expect(html.components(separatedBy: "<polyline").count - 1 == 2, "loss and throughput drawn; series without data are not")
        #expect(html.contains("<tr><th>steps</th><td>2</td></tr>"))
    }
}

extension RunRecord.Step {
    init(step: Int, loss: Double? = nil, images_per_s: Double? = nil) {
        self.init(step: step, epoch: 0, loss: loss, recon: nil, latent: nil, sparsity: nil, lr: nil, images_per_s: images_per_s,
                  step_s: nil, data_s: nil, compute_s: nil, allreduce_s: nil, allreduce_hidden_s: nil, elapsed_s: nil)
    }
}

@Suite struct RunRecordTests {
    @Test func jsonValuesReadAsAPersonWould() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(#"{"a":true,"b":false,"c":8,"d":0.38831293582916,"e":"x","f":[1,2]}"#.utf8)) as? [String: Any])
        #expect(RunRecord.display(object["a"]!) == "true" && RunRecord.display(object["b"]!) == "false")
        #expect(RunRecord.display(object["c"]!) == "8" && RunRecord.display(object["d"]!) == "0.388313")
        #expect(RunRecord.display(object["e"]!) == "x" && RunRecord.display(object["f"]!) == "1, 2")
    }

    @Test func aFolderWithNothingOfARunIsAClearError() {
        #expect(throws: RunRecord.Failure.self) { try RunRecord.load(folder: "/nonexistent-\(UUID().uuidString)") }
    }
}
