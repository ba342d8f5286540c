import Foundation
import Wire

/// With `--timeline`: collects the spans of one rank's steps on the training thread and sends
/// them to the coordinator after each step (`TimelineReport`). Instants of the monotonic clock
/// become microseconds of the wall clock through one anchor per generation, so the spans of a
/// generation keep their exact relative times; the coordinator aligns the wall clocks of hosts.
final class TimelineRecorder {
    private let anchor = ContinuousClock.now
    private let anchorMicros = Int64(Date().timeIntervalSince1970 * 1_000_000)
    private(set) var spans: [TimelineSpan] = []

    func micros(_ instant: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = (instant - anchor).components
        return anchorMicros + seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    /// Records `name` on `thread` from `range.lowerBound` to `range.upperBound`.
    func add(_ name: String, _ range: Range<ContinuousClock.Instant>, on thread: TimelineSpan.Thread = .training) {
        let start = micros(range.lowerBound)
        spans.append(TimelineSpan(thread: thread, name: name, startMicros: start,
                                  durationMicros: max(micros(range.upperBound) - start, 0)))
    }

    /// Runs `body`, recording it as `name`.
    func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let start = ContinuousClock.now
        defer { add(name, start..<ContinuousClock.now) }
        return try body()
    }

    /// Sends what was recorded since the last call (if anything) as `rank`'s spans of `step`.
    func flush(rank: Int, step: Int, control: ControlChannel) {
        guard !spans.isEmpty else { return }
        control.send(.timelineReport(TimelineReport(rank: UInt32(rank), step: UInt64(step), sentMicros: micros(ContinuousClock.now),
                                                    spans: spans)))
        spans.removeAll(keepingCapacity: true)
    }
}
