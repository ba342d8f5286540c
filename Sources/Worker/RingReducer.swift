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
    /// When the last step's wait began and ended, and when each of its collectives ran on the
    /// collective thread (for the timeline).
    public private(set) var lastWaitSpan: Range<ContinuousClock.Instant>?
    public private(set) var lastCollectiveSpans: [Range<ContinuousClock.Instant>] = []
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
        lastCollectiveSpans.removeAll(keepingCapacity: true)
        for ticket in tickets {
            do throws(RingError) {
                let span = try collectives.waitForSpan(ticket)
                ran += span.upperBound - span.lowerBound
                lastCollectiveSpans.append(span)
            } catch { failure = failure ?? error }
        }
        tickets.removeAll()
        let end = ContinuousClock.now
        lastWait = end - start
        lastWaitSpan = start..<end
        lastCollectiveTime = ran
        if let failure { throw failure }
    }
}
