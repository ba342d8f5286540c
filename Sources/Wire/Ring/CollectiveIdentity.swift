/// Which collective a piece belongs to: the run (a restarted coordinator starts a new run, whose
/// generations count from 1 again), the generation within the run, and the number of the
/// collective within the generation.
public struct CollectiveIdentity: Sendable, Equatable, CustomStringConvertible {
    public var runID: UInt64
    public var generation: UInt64
    public var sequence: UInt64

    public init(runID: UInt64, generation: UInt64, sequence: UInt64) {
        self.runID = runID
        self.generation = generation
        self.sequence = sequence
    }

    public var description: String {
        "run \(String(runID, radix: 16)) generation \(generation) collective #\(sequence)"
    }
}

/// How an incoming piece relates to the collective in progress.
enum PieceStanding: Equatable {
    /// Of this collective: it must match the plan.
    case current
    /// Of another run id: an earlier incarnation of the coordinator, or another job. Run ids
    /// are random, not ordered, so every other run is foreign. Dropped.
    case foreignRun
    /// Of an older generation of this run, or of an earlier collective of this generation: a
    /// leftover. Dropped.
    case stale
    /// Of a newer generation of this run: the sender has moved on and this rank is behind.
    /// The piece is kept for that generation and the collective fails.
    case newerGeneration

    /// The standing of a piece of `run`, `generation` and `sequence` while `current` runs.
    init(run: UInt64, generation: UInt64, sequence: UInt64, current: CollectiveIdentity) {
        if run != current.runID {
            self = .foreignRun
        } else if generation < current.generation || (generation == current.generation && sequence < current.sequence) {
            self = .stale
        } else if generation > current.generation {
            self = .newerGeneration
        } else {
            self = .current
        }
    }
}

/// Numbers the collectives of one transport. `reform` starts afresh (new run id, no generation
/// seen, sequence 0), so a rank placed in a generation, whatever it did before, numbers its
/// collectives exactly as a rank that has just started: a run restarted by a new coordinator
/// counts generations from 1 again, and a generation number alone says nothing about where a
/// rank's sequence stands.
struct CollectiveNumbering: Equatable {
    private(set) var runID: UInt64
    /// The generation of the latest collective since the last reform; nil before the first.
    private(set) var generation: UInt64?
    private var nextSequence: UInt64 = 0

    init(runID: UInt64) {
        self.runID = runID
    }

    /// Forgets everything of the previous place: the next collective is #0 of its generation.
    mutating func reform(runID: UInt64) {
        self.runID = runID
        generation = nil
        nextSequence = 0
    }

    /// The identity of the next collective, run in `generation`. A generation other than that
    /// of the previous collective starts again at #0. Every rank numbers the same calls alike:
    /// all ranks call the same collectives in the same order.
    mutating func next(generation: UInt64) -> CollectiveIdentity {
        if generation != self.generation {
            self.generation = generation
            nextSequence = 0
        }
        defer { nextSequence += 1 }
        return CollectiveIdentity(runID: runID, generation: generation, sequence: nextSequence)
    }
}
