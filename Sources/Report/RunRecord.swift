import Foundation

/// What a run folder holds for its report: the step metrics, the events and the summary, read
/// from the files the coordinator writes (docs/observability.md). Lines that do not parse are
/// counted, not fatal: a run killed mid-line leaves a partial last line.
public struct RunRecord: Sendable, Equatable {
    /// One `--metrics` line (the fields the report draws).
    public struct Step: Decodable, Sendable, Equatable {
        public var step: Int
        public var epoch: Int?
        public var loss: Double?
        public var recon: Double?
        public var latent: Double?
        public var sparsity: Double?
        public var lr: Double?
        public var images_per_s: Double?
        public var step_s: Double?
        public var data_s: Double?
        public var compute_s: Double?
        public var allreduce_s: Double?
        public var allreduce_hidden_s: Double?
        public var elapsed_s: Double?
    }

    /// One validation line of the metrics (`"kind": "validation"`).
    public struct Validation: Decodable, Sendable, Equatable {
        public var step: Int
        public var images: Int?
        public var loss: Double?
        public var recon: Double?
        public var latent: Double?
        public var psnr: Double?
        public var ssim: Double?
        public var sparsity: Double?
        public var best: Bool?
    }

    /// A metrics line's kind: step lines have none.
    private struct Kind: Decodable { var kind: String? }

    /// One `events.jsonl` line: its name, wall time and the other fields as text.
    public struct Event: Sendable, Equatable {
        public var name: String
        public var time: Double?
        public var details: [(String, String)]

        public static func == (a: Event, b: Event) -> Bool {
            a.name == b.name && a.time == b.time && a.details.map(\.0) == b.details.map(\.0) && a.details.map(\.1) == b.details.map(\.1)
        }
    }

    public var folder: String
    public var steps: [Step]
    public var validations: [Validation] = []
    /// `best/summary.json`'s fields as text (empty without a best checkpoint).
    public var best: [(String, String)] = []
    /// The newest validation's reconstruction grid (`samples/step-NNNNNNNN.png`).
    public var latestGrid: (step: Int, png: [UInt8])?
    public var events: [Event]
    /// `final/summary.json`'s fields as text, in the file's order of keys sorted.
    public var summary: [(String, String)]
    /// Lines of the metrics and events files that did not parse.
    public var unreadableLines: Int

    public static func == (a: RunRecord, b: RunRecord) -> Bool {
        a.folder == b.folder && a.steps == b.steps && a.validations == b.validations && a.events == b.events
            && a.unreadableLines == b.unreadableLines && a.latestGrid?.step == b.latestGrid?.step && a.latestGrid?.png == b.latestGrid?.png
            && a.best.map(\.0) == b.best.map(\.0) && a.best.map(\.1) == b.best.map(\.1)
            && a.summary.map(\.0) == b.summary.map(\.0) && a.summary.map(\.1) == b.summary.map(\.1)
    }

    public enum Failure: Error, CustomStringConvertible {
        case notARunFolder(String)

        public var description: String {
            switch self {
            case let .notARunFolder(folder):
                "\(folder) holds no metrics.jsonl, events.jsonl or final/summary.json: give the --checkpoint-dir of a run (and --metrics FILE if the run wrote its metrics elsewhere)"
            }
        }
    }

    /// Reads `folder` (a run's --checkpoint-dir), with the metrics from `metricsFile` if given.
    public static func load(folder: String, metricsFile: String? = nil) throws(Failure) -> RunRecord {
        let metricsPath = metricsFile ?? folder + "/metrics.jsonl"
        let metricsText = try? String(contentsOfFile: metricsPath, encoding: .utf8)
        let eventsText = try? String(contentsOfFile: folder + "/events.jsonl", encoding: .utf8)
        let summaryData = FileManager.default.contents(atPath: folder + "/final/summary.json")
        guard metricsText != nil || eventsText != nil || summaryData != nil else { throw .notARunFolder(folder) }
        var unreadable = 0
        let (steps, validations, badSteps) = parseMetrics(metricsText ?? "")
        unreadable += badSteps
        let (events, badEvents) = parseEvents(eventsText ?? "")
        unreadable += badEvents
        let summary = summaryData.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            .map { object in object.keys.sorted().map { ($0, display(object[$0] ?? "")) } } ?? []
        var record = RunRecord(folder: folder, steps: steps, events: events, summary: summary, unreadableLines: unreadable)
        record.validations = validations
        record.best = FileManager.default.contents(atPath: folder + "/best/summary.json")
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            .map { object in object.keys.sorted().map { ($0, display(object[$0] ?? "")) } } ?? []
        record.latestGrid = latestGrid(in: folder + "/samples")
        return record
    }

    /// The steps of metrics lines and the validations, the last line of each step winning (a
    /// resumed run repeats the steps after its checkpoint), in step order; and how many lines
    /// did not parse.
    static func parseMetrics(_ text: String) -> (steps: [Step], validations: [Validation], unreadable: Int) {
        var byStep: [Int: Step] = [:]
        var validations: [Int: Validation] = [:]
        var bad = 0
        let decoder = JSONDecoder()
        for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            let data = Data(line.utf8)
            if (try? decoder.decode(Kind.self, from: data))?.kind == "validation" {
                guard let validation = try? decoder.decode(Validation.self, from: data) else { bad += 1; continue }
                validations[validation.step] = validation
                continue
            }
            guard let step = try? decoder.decode(Step.self, from: data) else { bad += 1; continue }
            byStep[step.step] = step
        }
        return (byStep.keys.sorted().map { byStep[$0]! }, validations.keys.sorted().map { validations[$0]! }, bad)
    }

    /// The steps of metrics lines (validations left out).
    static func parseSteps(_ text: String) -> ([Step], Int) {
        let parsed = parseMetrics(text)
        return (parsed.steps, parsed.unreadable)
    }

    /// The grid of the highest step in `folder` (`step-NNNNNNNN.png`).
    static func latestGrid(in folder: String) -> (step: Int, png: [UInt8])? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let steps = names.compactMap { name -> Int? in
            guard name.hasPrefix("step-"), name.hasSuffix(".png") else { return nil }
            return Int(name.dropFirst(5).dropLast(4))
        }
        guard let step = steps.max(), let data = FileManager.default.contents(atPath: folder + "/step-\(String(format: "%08d", step)).png") else {
            return nil
        }
        return (step, Array(data))
    }

    static func parseEvents(_ text: String) -> ([Event], Int) {
        var events: [Event] = []
        var bad = 0
        for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let name = object["event"] as? String else { bad += 1; continue }
            let details = object.keys.filter { $0 != "event" && $0 != "time" }.sorted().map { ($0, display(object[$0] ?? "")) }
            events.append(Event(name: name, time: (object["time"] as? NSNumber)?.doubleValue, details: details))
        }
        return (events, bad)
    }

    /// A JSON value as a person reads it: numbers short (6 significant digits), booleans as words.
    static func display(_ value: Any) -> String {
        switch value {
        case let string as String:
            return string
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 1e15 { return String(Int64(double)) }
            return String(format: "%.6g", double)
        case let list as [Any]:
            return list.map(display).joined(separator: ", ")
        default:
            return "\(value)"
        }
    }
}
