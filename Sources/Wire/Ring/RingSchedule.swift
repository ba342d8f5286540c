/// The ring all-reduce schedule of one rank: which chunk it sends and receives at each step.
///
/// Legend: N = world size, r = rank, L = buffer length in elements, S = 2(N-1) steps.
/// The buffer is cut into N chunks whose sizes differ by at most one element (chunk c covers
/// `chunkRange(c)`; some are empty when L < N). At step s rank r sends chunk (r - s) mod N to
/// rank r + 1 and receives chunk (r - s - 1) mod N from rank r - 1. Steps 0..<N-1 are the
/// reduce-scatter (the received piece is added into the buffer), steps N-1..<S the all-gather
/// (the received piece overwrites the buffer). What a rank receives at step s is what it sends
/// at step s + 1, so chunks flow piece by piece around the ring (pipelining).
///
/// Summation order is fixed: chunk c ends as ((x_c + x_{c+1}) + x_{c+2}) + ... + x_{c-1}
/// (ranks mod N), the same on every run, and all ranks copy the same final bytes.
public struct RingSchedule: Sendable, Equatable {
    public let rank: Int
    public let worldSize: Int
    public let elementCount: Int
    /// Elements per pipelined piece (1 MiB of float32 by default).
    public let pieceElements: Int

    public init(rank: Int, worldSize: Int, elementCount: Int, pieceElements: Int = 262_144) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) of world size \(worldSize)")
        precondition(elementCount >= 0 && pieceElements >= 1)
        self.rank = rank
        self.worldSize = worldSize
        self.elementCount = elementCount
        self.pieceElements = pieceElements
    }

    /// 2(N-1): N-1 reduce-scatter steps then N-1 all-gather steps.
    public var stepCount: Int { 2 * (worldSize - 1) }

    /// Elements of chunk `chunk`: the first L mod N chunks get one element more.
    public func chunkRange(_ chunk: Int) -> Range<Int> {
        let base = elementCount / worldSize
        let extra = elementCount % worldSize
        let start = chunk * base + min(chunk, extra)
        return start..<(start + base + (chunk < extra ? 1 : 0))
    }

    public func sendChunk(atStep step: Int) -> Int { modulo(rank - step) }
    public func receiveChunk(atStep step: Int) -> Int { modulo(rank - step - 1) }

    /// True for reduce-scatter steps (add into the buffer), false for all-gather (overwrite).
    public func reduces(atStep step: Int) -> Bool { step < worldSize - 1 }

    /// The chunk this rank holds fully reduced after the reduce-scatter.
    public var ownedChunk: Int { modulo(rank + 1) }

    /// `range` cut into pipelined pieces of at most `pieceElements`.
    public func pieces(of range: Range<Int>) -> [Range<Int>] {
        stride(from: range.lowerBound, to: range.upperBound, by: pieceElements).map {
            $0..<min($0 + pieceElements, range.upperBound)
        }
    }

    /// Elements this rank sends in one all-reduce: L minus one chunk in each phase,
    /// that is 2(N-1)/N of the buffer up to the rounding of chunk sizes.
    public var elementsSent: Int {
        (0..<stepCount).reduce(0) { $0 + chunkRange(sendChunk(atStep: $1)).count }
    }

    private func modulo(_ value: Int) -> Int { ((value % worldSize) + worldSize) % worldSize }
}
