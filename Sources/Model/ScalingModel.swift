/// A projection of a training step's time to more threads than were measured, part by part,
/// from two step profiles (StepProfile.swift) of the same work: one on one thread and one on
/// `measuredThreads` threads.
///
/// Each part scales by what limits it:
/// - a job of the model's thread pool split into c chunks: a thread's share is whole chunks, so
///   on T threads it takes ceil(c/T) chunk-times of c, divided by the efficiency measured at
///   `measuredThreads` (the ideal time there over the measured one, at most 1; it holds what
///   waking the helpers and sharing memory bandwidth cost, and is assumed to stay the same);
/// - OpenBLAS: Amdahl's law with the serial fraction that fits its two measurements;
/// - serial regions and the time no region names: as on one thread.
public struct ScalingModel: Sendable {
    public struct Part: Sendable, Equatable {
        public var label: String
        public var kind: StepProfile.Kind
        /// Seconds per step on one thread and on `measuredThreads` threads.
        public var one: Double
        public var many: Double

        public init(label: String, kind: StepProfile.Kind, one: Double, many: Double) {
            self.label = label
            self.kind = kind
            self.one = one
            self.many = many
        }
    }

    /// What the time no region names is called in `parts`.
    public static let untimedLabel = "other serial work"

    public let measuredThreads: Int
    /// Largest one-thread time first.
    public let parts: [Part]

    public init(measuredThreads: Int, parts: [Part]) {
        precondition(measuredThreads >= 2, "a scaling model needs a measurement on at least two threads")
        self.measuredThreads = measuredThreads
        self.parts = parts.sorted { ($0.one, $0.label) > ($1.one, $1.label) }
    }

    /// The parts of two profiles of the same steps; a part missing from one counts 0 there.
    public init(one: StepProfile, many: StepProfile, measuredThreads: Int) {
        let keys = Set(one.seconds.keys).union(many.seconds.keys)
        var parts = keys.map { Part(label: $0.label, kind: $0.kind, one: one.perStep($0), many: many.perStep($0)) }
        parts.append(Part(label: Self.untimedLabel, kind: .serial, one: one.untimedPerStep, many: many.untimedPerStep))
        self.init(measuredThreads: measuredThreads, parts: parts)
    }

    /// Seconds per step of the parts on one thread, and on `measuredThreads` threads.
    public var oneThreadSeconds: Double { parts.reduce(0) { $0 + $1.one } }
    public var measuredSeconds: Double { parts.reduce(0) { $0 + $1.many } }

    /// Seconds per step of `part` on `threads` threads, by the rules above (on one thread, as measured).
    public func projected(_ part: Part, threads: Int) -> Double {
        precondition(threads >= 1, "at least one thread")
        if threads == 1 { return part.one }
        switch part.kind {
        case .serial:
            return part.one
        case .pool(let chunks):
            let share = Self.chunkShare(chunks: chunks, threads: threads)
            return part.one * share / Self.efficiency(part, threads: measuredThreads)
        case .blas:
            let serial = Self.serialFraction(part, threads: measuredThreads)
            return part.one * (serial + (1 - serial) / Double(threads))
        }
    }

    /// Seconds per step on `threads` threads.
    public func projectedSeconds(threads: Int) -> Double {
        parts.reduce(0) { $0 + projected($1, threads: threads) }
    }

    /// The share of a pool job's one-thread time its busiest thread takes: ceil(c/T)/c.
    public static func chunkShare(chunks: Int, threads: Int) -> Double {
        guard chunks > 0 else { return 1 }
        return Double((chunks + threads - 1) / threads) / Double(chunks)
    }

    /// A pool job's measured efficiency on `threads` threads: its ideal time there over the
    /// measured one, in (0, 1] (1 when either time is 0).
    public static func efficiency(_ part: Part, threads: Int) -> Double {
        guard case .pool(let chunks) = part.kind, part.one > 0, part.many > 0 else { return 1 }
        let ideal = part.one * chunkShare(chunks: chunks, threads: threads)
        return min(1, ideal / part.many)
    }

    /// The fraction s of a part that did not speed up, from many = one * (s + (1 - s)/T), in [0, 1].
    public static func serialFraction(_ part: Part, threads: Int) -> Double {
        guard part.one > 0 else { return 0 }
        let inverse = 1 / Double(threads)
        return min(1, max(0, (part.many / part.one - inverse) / (1 - inverse)))
    }

    /// Seconds per step that no number of threads removes: serial parts, OpenBLAS's serial
    /// fraction, and one chunk of every pool job.
    public var floorSeconds: Double {
        parts.reduce(0) { total, part in
            switch part.kind {
            case .serial: return total + part.one
            case .blas: return total + part.one * Self.serialFraction(part, threads: measuredThreads)
            case .pool(let chunks):
                return total + part.one / Double(max(chunks, 1)) / Self.efficiency(part, threads: measuredThreads)
            }
        }
    }
}
