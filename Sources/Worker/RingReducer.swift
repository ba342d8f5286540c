import Wire

/// A `GradientReducer` over the ring: the all-reduce runs on the collective thread (which owns
/// the sockets) while this thread waits; the wait is measured for the step-time breakdown.
public final class RingReducer: GradientReducer {
    public let collectives: CollectiveThread
    public let generation: UInt64
    /// Wall time of the last `allReduceSum`, as seen by the calling thread.
    public private(set) var lastWait: Duration = .zero

    public init(collectives: CollectiveThread, generation: UInt64) {
        self.collectives = collectives
        self.generation = generation
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        let start = ContinuousClock.now
        defer { lastWait = ContinuousClock.now - start }
        _ = try collectives.wait(collectives.allReduce(buffer, generation: generation))
    }
}
