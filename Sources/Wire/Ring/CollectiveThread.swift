import Foundation

/// A buffer region handed to the collective thread. The caller must neither read nor write it
/// until the matching `CollectiveThread.Ticket` completes.
public struct SharedFloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableBufferPointer<Float>
    public init(_ pointer: UnsafeMutableBufferPointer<Float>) { self.pointer = pointer }
}

/// Runs ring collectives on one dedicated `Thread` that owns the ring transport (a
/// `RingCommunicator`'s sockets, or a `SharedMemoryRing`, stay on one thread), so the compute thread can hand over gradient buckets as backward
/// produces them and keep computing: communication overlaps the rest of backward, as
/// PyTorch DDP does. Jobs run in submission order, the same on every rank.
public final class CollectiveThread: @unchecked Sendable {
    /// Identifies a submitted job.
    public struct Ticket: Hashable, Sendable {
        public let number: Int
    }

    private enum Job {
        case connect(String, curvePublicKey: String?)
        case reform(rank: Int, worldSize: Int, runID: UInt64)
        case allReduce(SharedFloatBuffer, generation: UInt64)
        case broadcast(SharedFloatBuffer, root: Int, generation: UInt64)
        case stop
    }

    private let condition = NSCondition()
    private var queue: [(Ticket, Job)] = []
    private var finished: [Int: Result<Range<ContinuousClock.Instant>, RingError>] = [:]
    private var submitted = 0
    private var setup: Result<String, RingError>?
    private var stopped = false

    /// Starts the thread, which creates the transport with `make` (bind included) and then
    /// serves jobs. Returns once the transport exists (or failed). `make` returns a
    /// `RingCommunicator` (ZeroMQ) or a `SharedMemoryRing` (same-host neighbours).
    public init<Transport: RingTransport & SendableMetatype>(setupTimeout: Duration = .seconds(30),
                                          make: @escaping @Sendable () throws(RingError) -> Transport) throws(RingError) {
        // The thread keeps the object alive until `stop()` has been served.
        let thread = Thread { self.serve { () throws(RingError) -> any RingTransport in try make() } }
        thread.name = "scvae-collectives"
        thread.stackSize = 4 << 20
        thread.start()
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: setupTimeout.inSeconds)
        while setup == nil {
            if !condition.wait(until: deadline) { break }
        }
        switch setup {
        case let .success(endpoint)?: self.endpoint = endpoint
        case let .failure(error)?: throw error
        case nil: throw .collectiveThreadTimedOut(job: "setup", seconds: setupTimeout.inSeconds)
        }
    }

    /// The bound endpoint of the transport (give it to the previous rank).
    public private(set) var endpoint = ""

    /// Connects the communicator to the next rank (`curvePublicKey`: its key, when CURVE is on).
    public func connect(toNext endpoint: String, curvePublicKey: String? = nil) -> Ticket {
        submit(.connect(endpoint, curvePublicKey: curvePublicKey))
    }

    /// Gives the communicator its place in a new generation (the receiving socket stays bound);
    /// follow with `connect(toNext:)`.
    public func reform(rank: Int, worldSize: Int, runID: UInt64) -> Ticket {
        submit(.reform(rank: rank, worldSize: worldSize, runID: runID))
    }

    /// Queues an all-reduce of `buffer` (typically one gradient bucket).
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) -> Ticket {
        submit(.allReduce(SharedFloatBuffer(buffer), generation: generation))
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, generation: UInt64) -> Ticket {
        submit(.broadcast(SharedFloatBuffer(buffer), root: root, generation: generation))
    }

    /// Waits for `ticket`; returns the time the job ran on the collective thread. The timeout
    /// only bounds this wait: the ring's own deadlines end a job whose peer is dead.
    public func wait(_ ticket: Ticket, timeout: Duration = .seconds(3600)) throws(RingError) -> Duration {
        let span = try waitForSpan(ticket, timeout: timeout)
        return span.upperBound - span.lowerBound
    }

    /// Waits for `ticket`, as `wait`; returns when the job started and ended on the collective thread.
    public func waitForSpan(_ ticket: Ticket, timeout: Duration = .seconds(3600)) throws(RingError) -> Range<ContinuousClock.Instant> {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        while finished[ticket.number] == nil {
            if !condition.wait(until: deadline) {
                throw .collectiveThreadTimedOut(job: "job \(ticket.number)", seconds: timeout.inSeconds)
            }
        }
        switch finished.removeValue(forKey: ticket.number) {
        case let .success(span)?: return span
        case let .failure(error)?: throw error
        case nil: let now = ContinuousClock.now; return now..<now
        }
    }

    /// Stops the thread after the queued jobs and closes the communicator on it. Call it when
    /// done: the thread holds this object until then.
    @discardableResult
    public func stop() -> Ticket {
        submit(.stop)
    }

    private func submit(_ job: Job) -> Ticket {
        condition.lock()
        defer { condition.unlock() }
        submitted += 1
        let ticket = Ticket(number: submitted)
        if stopped {
            finished[ticket.number] = .failure(.collectiveThreadStopped(job: "job \(ticket.number)"))
        } else {
            queue.append((ticket, job))
        }
        condition.broadcast()
        return ticket
    }

    private func serve(_ make: @Sendable () throws(RingError) -> any RingTransport) {
        let communicator: any RingTransport
        do {
            communicator = try make()
            publish { $0.setup = .success(communicator.endpoint) }
        } catch {
            publish { $0.setup = .failure(error); $0.stopped = true }
            return
        }
        defer { communicator.close() }
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let (ticket, job) = queue.removeFirst()
            condition.unlock()
            let start = ContinuousClock.now
            let result: Result<Range<ContinuousClock.Instant>, RingError>
            do throws(RingError) {
                switch job {
                case let .connect(endpoint, key): try communicator.connect(toNext: endpoint, curvePublicKey: key)
                case let .reform(rank, worldSize, runID):
                    // Only the ZeroMQ ring keeps its receiving socket across generations; the
                    // shared-memory ring takes new segment names per generation (a new transport).
                    guard let ring = communicator as? RingCommunicator else {
                        throw RingError.transport(rank: rank, error: .call(operation: "reform", errno: EINVAL,
                                                                            text: "this transport is made anew for each generation"))
                    }
                    try ring.reform(rank: rank, worldSize: worldSize, runID: runID)
                case let .allReduce(buffer, generation): try communicator.allReduce(buffer.pointer, generation: generation)
                case let .broadcast(buffer, root, generation): try communicator.broadcast(buffer.pointer, root: root, generation: generation)
                case .stop:
                    publish { $0.stopped = true; $0.finished[ticket.number] = .success(start..<start) }
                    failQueued()
                    return
                }
                result = .success(start..<ContinuousClock.now)
            } catch {
                result = .failure(error)
            }
            publish { $0.finished[ticket.number] = result }
        }
    }

    private func failQueued() {
        publish { state in
            for (ticket, _) in state.queue {
                state.finished[ticket.number] = .failure(.collectiveThreadStopped(job: "job \(ticket.number)"))
            }
            state.queue.removeAll()
        }
    }

    private func publish(_ change: (CollectiveThread) -> Void) {
        condition.lock()
        change(self)
        condition.broadcast()
        condition.unlock()
    }
}

/// Groups gradient tensors into all-reduce buckets.
public enum GradientBuckets {
    /// `tensorRanges` are the tensors' element ranges in the flat gradient buffer, in the order
    /// backward produces them. Consecutive tensors that touch in memory are merged until a
    /// bucket holds at least `bucketElements`; a gap starts a new bucket. Every rank must use
    /// the same plan (the buckets are separate collectives, in this order).
    public static func plan(tensorRanges: [Range<Int>], bucketElements: Int) -> [Range<Int>] {
        var buckets: [Range<Int>] = []
        var current: Range<Int>?
        for range in tensorRanges where !range.isEmpty {
            if let open = current, open.count < bucketElements {
                if open.upperBound == range.lowerBound {
                    current = open.lowerBound..<range.upperBound
                    continue
                }
                if range.upperBound == open.lowerBound {
                    current = range.lowerBound..<open.upperBound
                    continue
                }
            }
            if let open = current { buckets.append(open) }
            current = range
        }
        if let open = current { buckets.append(open) }
        return buckets
    }
}
