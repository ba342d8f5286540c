import Foundation
import TensorFiles
import Wire

/// Aligns each worker's wall clock to the coordinator's: every `TimelineReport` carries the
/// worker's clock as it was sent, and its arrival is stamped with the coordinator's; the smallest
/// (arrival - sent) seen from a worker is the clock offset plus the shortest one-way delay (tens
/// of microseconds on one host, well under a millisecond on a LAN), so it is taken as the offset.
/// The offset settles after `samplesToSettle` reports and never moves again: spans of one worker
/// are all moved by the same amount, so they keep their order and nesting. A pure value.
struct ClockAlignment: Equatable {
    static let samplesToSettle = 5
    private var offsets: [String: Int64] = [:]
    private var samples: [String: Int] = [:]

    /// Takes one report's times (ignored once the worker's offset has settled).
    mutating func observe(_ worker: String, sentMicros: Int64, receivedMicros: Int64) {
        guard !isSettled(worker) else { return }
        let sample = receivedMicros &- sentMicros
        offsets[worker] = min(offsets[worker] ?? sample, sample)
        samples[worker, default: 0] += 1
    }

    func isSettled(_ worker: String) -> Bool { samples[worker, default: 0] >= Self.samplesToSettle }

    /// `micros` of `worker`'s clock on the coordinator's clock.
    func coordinatorMicros(_ micros: Int64, of worker: String) -> Int64 { micros &+ (offsets[worker] ?? 0) }
}

/// One event of Chrome's trace-event format (what chrome://tracing and Perfetto open): a
/// complete event ("X", with a duration), an instant ("i") or a metadata event ("M") naming a
/// process track. Times in microseconds.
struct TraceEvent: Encodable, Equatable {
    var name: String
    var ph: String
    var ts: Int64
    var dur: Int64?
    var pid: Int
    var tid: Int
    var s: String?
    var args: [String: String]?

    /// Track of the coordinator's own events.
    static let coordinatorTrack = 0
    /// Track of rank `rank`.
    static func track(rank: Int) -> Int { rank + 1 }
}

/// `--timeline FILE`: the run as a Chrome trace (JSON array format). One track per rank, with the
/// training thread's spans (data wait, forward/backward, all-reduce wait, optimizer, checkpoint
/// upload, validation, a generation's ring and state agreement) and the collective thread's (each
/// bucket's all-reduce, so its overlap with backward shows); the coordinator's events (generations,
/// workers down, recoveries, checkpoints, validations) on a track of their own. Every worker time
/// is moved to the coordinator's clock (`ClockAlignment`): a worker's first reports wait in memory
/// until its offset has settled. The file is valid JSON once the run
/// ends (the closing bracket); a coordinator killed before leaves it without, which both viewers
/// accept.
final class TimelineFile {
    let path: String
    private let handle: FileHandle
    private var alignment = ClockAlignment()
    private var namedTracks: Set<Int> = []
    /// Reports of workers whose clock offset has not settled yet.
    private var waiting: [String: [(report: TimelineReport, rank: Int)]] = [:]
    private var first = true
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    init(path: String) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: Data("[\n".utf8)) else {
            throw CoordinatorFailure.cannotWrite(path: path, reason: "cannot create the timeline file")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try write([TraceEvent(name: "process_name", ph: "M", ts: 0, pid: TraceEvent.coordinatorTrack, tid: 0,
                              args: ["name": "coordinator"])])
    }

    deinit { try? handle.close() }

    static func nowMicros() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    /// A worker's spans, moved to the coordinator's clock, on rank `rank`'s track.
    func append(_ report: TimelineReport, from worker: String, rank: Int, receivedMicros: Int64 = nowMicros()) throws {
        alignment.observe(worker, sentMicros: report.sentMicros, receivedMicros: receivedMicros)
        waiting[worker, default: []].append((report, rank))
        guard alignment.isSettled(worker) else { return }
        try flush(worker)
    }

    /// Writes `worker`'s waiting reports with its offset as it stands.
    private func flush(_ worker: String) throws {
        for (report, rank) in waiting.removeValue(forKey: worker) ?? [] { try write(report, from: worker, rank: rank) }
    }

    private func write(_ report: TimelineReport, from worker: String, rank: Int) throws {
        let pid = TraceEvent.track(rank: rank)
        var events: [TraceEvent] = []
        if namedTracks.insert(pid).inserted {
            events.append(TraceEvent(name: "process_name", ph: "M", ts: 0, pid: pid, tid: 0, args: ["name": "rank \(rank)"]))
            for thread in TimelineSpan.Thread.allCases {
                events.append(TraceEvent(name: "thread_name", ph: "M", ts: 0, pid: pid, tid: Int(thread.rawValue),
                                         args: ["name": thread == .training ? "training" : "collectives"]))
            }
        }
        for span in report.spans {
            events.append(TraceEvent(name: span.name, ph: "X", ts: alignment.coordinatorMicros(span.startMicros, of: worker),
                                     dur: span.durationMicros, pid: pid, tid: Int(span.thread.rawValue),
                                     args: ["step": "\(report.step)", "worker": worker]))
        }
        try write(events)
    }

    /// A coordinator event: an instant now, or a span of `seconds` ending now.
    func appendCoordinatorEvent(_ name: String, seconds: Double? = nil, args: [String: String] = [:], now: Int64 = nowMicros()) throws {
        let event: TraceEvent
        if let seconds, seconds > 0 {
            let duration = Int64(seconds * 1_000_000)
            event = TraceEvent(name: name, ph: "X", ts: now - duration, dur: duration, pid: TraceEvent.coordinatorTrack, tid: 0, args: args)
        } else {
            event = TraceEvent(name: name, ph: "i", ts: now, pid: TraceEvent.coordinatorTrack, tid: 0, s: "p", args: args)
        }
        try write([event])
    }

    /// Ends the array: the file is one JSON document from now on.
    func close() {
        for worker in waiting.keys.sorted() { try? flush(worker) }
        try? handle.write(contentsOf: Data("\n]\n".utf8))
        try? handle.close()
    }

    private func write(_ events: [TraceEvent]) throws {
        var text = ""
        for event in events {
            let json = String(decoding: try encoder.encode(event), as: UTF8.self)
            text += (first ? "" : ",\n") + json
            first = false
        }
        if !text.isEmpty { try handle.write(contentsOf: Data(text.utf8)) }
    }
}
