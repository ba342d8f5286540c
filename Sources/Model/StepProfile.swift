import Foundation

/// Where one thread's training steps spend their time, by kind of work: the jobs of the model's
/// thread pool (with the number of chunks each was split into), OpenBLAS calls, and labelled
/// serial regions. `ScalingModel` turns two of these (one thread, and T threads) into a
/// projection for more threads; `scvae bench scaling` prints both.
///
/// Off unless a benchmark installs one with `record(_:)`: then `ThreadPool.run`, `BLAS.sgemm`
/// and `measure` time what the recording thread does outside other timed regions (a BLAS call
/// inside a pool job is part of that job). Other threads, and nested calls, are not timed, so
/// nothing is counted twice.
public final class StepProfile: @unchecked Sendable {
    /// What a timed region was.
    public enum Kind: Hashable, Sendable {
        /// A job of the model's pool split into `chunks` chunks (one thread's share is whole chunks).
        case pool(chunks: Int)
        /// OpenBLAS, threaded by OpenBLAS itself.
        case blas
        /// Work on the calling thread only.
        case serial
    }

    public struct Key: Hashable, Sendable {
        /// What started the region: "File.function" (StepProfile.label) or a name given to `measure`.
        public var label: String
        public var kind: Kind
    }

    /// Seconds per key, summed over the recorded steps.
    public private(set) var seconds: [Key: Double] = [:]
    /// Seconds of the whole steps, and their number (`addStep`).
    public private(set) var stepSeconds = 0.0
    public private(set) var steps = 0

    /// Seconds spent keeping this profile (labels, the table), left out of the untimed rest.
    public private(set) var overheadSeconds = 0.0

    private var owner: pthread_t?
    private var depth = 0

    /// The profile being recorded, nil when none is (the usual case: then timing costs one load).
    /// Written only by the recording thread before and after it records; other threads read it
    /// and ignore a profile that is not theirs.
    nonisolated(unsafe) private static var active: StepProfile?

    public init() {}

    /// Records into `profile` what `body` does on this thread, then stops recording.
    public static func record<T>(_ profile: StepProfile, _ body: () throws -> T) rethrows -> T {
        precondition(active == nil, "one step profile at a time")
        profile.owner = pthread_self()
        active = profile
        defer {
            active = nil
            profile.owner = nil
        }
        return try body()
    }

    /// Adds one whole step of `seconds` (the total the timed regions are part of).
    public func addStep(seconds: Double) {
        stepSeconds += seconds
        steps += 1
    }

    /// Runs `body`, timing it as a `kind` region named `label` when a profile is being recorded on
    /// this thread and no other timed region encloses it.
    @inline(__always)
    public static func measure<T>(_ label: @autoclosure () -> String, _ kind: Kind = .serial,
                                  _ body: () throws -> T) rethrows -> T {
        guard let profile = active, let owner = profile.owner, pthread_equal(owner, pthread_self()) != 0,
              profile.depth == 0 else {
            return try body()
        }
        profile.depth += 1
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            profile.depth -= 1
            let end = DispatchTime.now().uptimeNanoseconds
            profile.seconds[Key(label: label(), kind: kind), default: 0] += Double(end - start) / 1e9
            // Building the label and updating the table is the profile's own cost, not the step's.
            profile.overheadSeconds += Double(DispatchTime.now().uptimeNanoseconds - end) / 1e9
        }
        return try body()
    }

    /// A source location as a label: #fileID's file name without ".swift", and the function's
    /// name without its arguments ("Conv2dDirect.forward").
    public static func label(_ fileID: StaticString, _ function: StaticString? = nil) -> String {
        let text = "\(fileID)"
        var name = text.split(separator: "/").last.map(String.init) ?? text
        if name.hasSuffix(".swift") { name = String(name.dropLast(6)) }
        guard let function else { return name }
        return name + "." + ("\(function)".split(separator: "(").first.map(String.init) ?? "")
    }

    /// Seconds per step of `key` (0 before any step).
    public func perStep(_ key: Key) -> Double {
        steps == 0 ? 0 : (seconds[key] ?? 0) / Double(steps)
    }

    /// Seconds per step outside every timed region (and outside the profile's own keeping):
    /// serial work no region names.
    public var untimedPerStep: Double {
        guard steps > 0 else { return 0 }
        return max(0, stepSeconds - seconds.values.reduce(0, +) - overheadSeconds) / Double(steps)
    }
}
