/// One span of a worker's timeline: what ran on which of its threads, when (microseconds of the
/// worker's wall clock since 1970) and for how long.
public struct TimelineSpan: Equatable, Sendable {
    /// The worker thread that ran it.
    public enum Thread: UInt8, Sendable, CaseIterable {
        /// The training thread: data wait, forward and backward, the all-reduce wait, the
        /// optimizer, uploads, validation, state agreement.
        case training = 1
        /// The collective thread: each bucket's all-reduce (overlapping backward).
        case collectives = 2
    }

    public var thread: Thread
    public var name: String
    public var startMicros: Int64
    public var durationMicros: Int64

    public init(thread: Thread, name: String, startMicros: Int64, durationMicros: Int64) {
        self.thread = thread
        self.name = name
        self.startMicros = startMicros
        self.durationMicros = durationMicros
    }
}

/// Worker -> coordinator (since protocol version 6), with `--timeline`: the spans of one step (or
/// of a generation's start) on this rank, and the worker's clock when it sent them, from which
/// the coordinator aligns the worker's clock to its own.
public struct TimelineReport: WirePayload {
    public static let kind = MessageKind.timelineReport

    public var rank: UInt32
    public var step: UInt64
    /// The worker's wall clock (microseconds since 1970) as it sent this report.
    public var sentMicros: Int64
    public var spans: [TimelineSpan]

    public init(rank: UInt32, step: UInt64, sentMicros: Int64, spans: [TimelineSpan]) {
        self.rank = rank
        self.step = step
        self.sentMicros = sentMicros
        self.spans = spans
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(rank)
        writer.write(step)
        writer.write(sentMicros)
        writer.writeArray(spans) { w, span in
            w.write(span.thread.rawValue)
            w.write(span.name)
            w.write(span.startMicros)
            w.write(span.durationMicros)
        }
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        rank = try reader.readUInt32("timeline.rank")
        step = try reader.readUInt64("timeline.step")
        sentMicros = try reader.readInt64("timeline.sentMicros")
        spans = try reader.readArray("timeline.spans", minimumElementSize: 1 + 4 + 16) { r throws(DecodeError) in
            let thread: TimelineSpan.Thread = try r.readEnum("timeline.spans[].thread")
            let name = try r.readString("timeline.spans[].name")
            let start = try r.readInt64("timeline.spans[].startMicros")
            let duration = try r.readInt64("timeline.spans[].durationMicros")
            guard duration >= 0 else { throw .invalidValue(field: "timeline.spans[].durationMicros", detail: "\(duration) is negative") }
            return TimelineSpan(thread: thread, name: name, startMicros: start, durationMicros: duration)
        }
    }
}
