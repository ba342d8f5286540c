/// The alpha-beta (latency-bandwidth) cost of the ring all-reduce.
///
/// Legend: N = world size, S = buffer bytes, alpha = seconds per message step, B = link bytes/s.
/// The ring takes 2(N-1) steps (reduce-scatter then all-gather), each moving one chunk of S/N
/// bytes over every rank's link at once:
///
///     T(N, S) = 2(N-1) * alpha + 2(N-1)/N * S/B
///
/// This is store-and-forward per step. Our ring also cuts each chunk into pieces and forwards a
/// piece as soon as it is applied, so when a chunk spans several pieces and takes longer than
/// alpha on the wire, later steps' latencies overlap earlier steps' transfers; the formula is
/// then an upper bound. `piecesPerChunk` says when that can happen.
public struct AlphaBetaModel: Sendable, Equatable {
    /// Seconds of one step's latency (a small message's one-way time, as the ring sees it).
    public var alpha: Double
    /// Bytes per second one link carries.
    public var bandwidth: Double

    public init(alpha: Double, bandwidth: Double) {
        precondition(alpha >= 0 && bandwidth > 0, "alpha \(alpha) s, bandwidth \(bandwidth) B/s")
        self.alpha = alpha
        self.bandwidth = bandwidth
    }

    /// 2(N-1) * alpha.
    public func latencySeconds(worldSize: Int) -> Double {
        Double(Self.stepCount(worldSize: worldSize)) * alpha
    }

    /// 2(N-1)/N * S/B: the bytes each link carries over its rate.
    public func bandwidthSeconds(worldSize: Int, bytes: Int) -> Double {
        guard worldSize > 1 else { return 0 }
        return Double(Self.stepCount(worldSize: worldSize)) / Double(worldSize) * Double(bytes) / bandwidth
    }

    /// T(N, S): the predicted seconds of one ring all-reduce.
    public func ringAllReduceSeconds(worldSize: Int, bytes: Int) -> Double {
        latencySeconds(worldSize: worldSize) + bandwidthSeconds(worldSize: worldSize, bytes: bytes)
    }

    /// 2(N-1) steps; none for a single rank.
    public static func stepCount(worldSize: Int) -> Int {
        precondition(worldSize >= 1, "world size \(worldSize)")
        return 2 * (worldSize - 1)
    }

    /// Alpha from the measured seconds of an all-reduce so small that its bandwidth term is
    /// negligible (one element per chunk): the time over its 2(N-1) steps.
    public static func alpha(fromTinyAllReduceSeconds seconds: Double, worldSize: Int) -> Double {
        precondition(worldSize >= 2, "a ring of one rank has no steps")
        return seconds / Double(stepCount(worldSize: worldSize))
    }

    /// Pieces of `pieceBytes` in one chunk (S/N bytes, rounded up) of the ring: 1 means no
    /// pipelining within a step, so the formula applies as is.
    public static func piecesPerChunk(worldSize: Int, bytes: Int, pieceBytes: Int) -> Int {
        precondition(worldSize >= 1 && pieceBytes >= 1, "world size \(worldSize), piece \(pieceBytes) bytes")
        let chunk = (bytes + worldSize - 1) / worldSize
        return max(1, (chunk + pieceBytes - 1) / pieceBytes)
    }
}

/// A link rate written as tc writes it: a number and a unit in bits per second, SI prefixes
/// ("1gbit", "100mbit", "500kbit", "2.5gbit", "8000bit").
public enum LinkRate {
    /// Units tc accepts for rates in bits per second, with their factors.
    static let units: [(suffix: String, bitsPerSecond: Double)] = [
        ("tbit", 1e12), ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1),
    ]

    /// Bits per second of `text`, or nil when it is not a positive number followed by one of
    /// bit, kbit, mbit, gbit, tbit (case-insensitive).
    public static func bitsPerSecond(_ text: String) -> Double? {
        let lowered = text.lowercased()
        for unit in units where lowered.hasSuffix(unit.suffix) {
            guard let number = Double(lowered.dropLast(unit.suffix.count)), number > 0, number.isFinite else { return nil }
            return number * unit.bitsPerSecond
        }
        return nil
    }
}
