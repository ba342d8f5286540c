import Wire

/// A `GradientReducer` over the ring: the all-reduce runs on the collective thread (which owns
/// the sockets) while this thread waits; the wait is measured for the step-time breakdown.
public final class RingReducer: OverlappingReducer {
    public let collectives: CollectiveThread
    public let generation: UInt64
    /// Wall time the calling thread waited in the last `allReduceSum` or `finishAll` (the
    /// all-reduce time not hidden behind backward).
    public private(set) var lastWait: Duration = .zero
    /// Time the collectives of the last step ran on the collective thread, hidden or not.
    public private(set) var lastCollectiveTime: Duration = .zero
    private var tickets: [CollectiveThread.Ticket] = []

    public init(collectives: CollectiveThread, generation: UInt64) {
        self.collectives = collectives
        self.generation = generation
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        startAllReduce(buffer)
        try finishAll()
    }

    public func startAllReduce(_ part: UnsafeMutableBufferPointer<Float>) {
        tickets.append(collectives.allReduce(part, generation: generation))
    }

    public func finishAll() throws {
        let start = ContinuousClock.now
        var ran = Duration.zero
        var failure: RingError?
        for ticket in tickets {
            do throws(RingError) { ran += try collectives.wait(ticket) } catch { failure = failure ?? error }
        }
        tickets.removeAll()
        lastWait = ContinuousClock.now - start
        lastCollectiveTime = ran
        if let failure { throw failure }
    }
}
