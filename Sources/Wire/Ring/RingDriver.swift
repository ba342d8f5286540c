/// The collectives, written once for every transport (`RingLink`): the plan, the machine, the
/// identity of each piece (run, generation, collective), drops, forwarding and the liveness rules.
enum RingDriver {
    /// Sums `buffer` over all ranks in place. `appliesPieces: false` runs the same schedule
    /// without adding (the sends-only benchmark: the transport's ceiling).
    static func allReduce<Link: RingLink>(_ link: Link, _ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64,
                                          appliesPieces: Bool = true) throws(RingError) {
        let schedule = RingSchedule(rank: link.rank, worldSize: link.worldSize, elementCount: buffer.count,
                                    pieceElements: link.settings.pieceElements)
        try run(link, RingPlan.allReduce(schedule), buffer, generation: generation, appliesPieces: appliesPieces)
    }

    /// Copies `root`'s buffer into every rank's buffer.
    static func broadcast<Link: RingLink>(_ link: Link, _ buffer: UnsafeMutableBufferPointer<Float>, root: Int,
                                          generation: UInt64) throws(RingError) {
        let plan = RingPlan.broadcast(rank: link.rank, worldSize: link.worldSize, root: root, elementCount: buffer.count,
                                      pieceElements: link.settings.pieceElements)
        try run(link, plan, buffer, generation: generation, appliesPieces: true)
    }

    private static func run<Link: RingLink>(_ link: Link, _ plan: RingPlan, _ buffer: UnsafeMutableBufferPointer<Float>,
                                            generation: UInt64, appliesPieces: Bool) throws(RingError) {
        guard link.worldSize > 1 else { return }
        try link.prepareCollective()
        let identity = link.core.numbering.next(generation: generation)
        var collective = RingCollective(link: link, plan: plan, identity: identity, buffer: buffer, appliesPieces: appliesPieces)
        do {
            try collective.run()
        } catch {
            collective.reportDrops()
            try link.abandon()
            throw error
        }
        collective.reportDrops()
    }
}

/// One collective in progress: the loop that posts what it can, takes what arrived, and waits
/// when neither moves.
private struct RingCollective<Link: RingLink> {
    let link: Link
    let settings: RingSettings
    let identity: CollectiveIdentity
    let buffer: UnsafeMutableBufferPointer<Float>
    let appliesPieces: Bool
    var machine: RingMachine
    /// Sends of the plan not yet taken by the transport, in plan order, from `firstUnsent` on
    /// (the next rank takes pieces in the order the plan lists them).
    var outgoing: [RingMachine.Send] = []
    var firstUnsent = 0
    var idle: IdleWait

    init(link: Link, plan: RingPlan, identity: CollectiveIdentity, buffer: UnsafeMutableBufferPointer<Float>, appliesPieces: Bool) {
        self.link = link
        settings = link.settings
        self.identity = identity
        self.buffer = buffer
        self.appliesPieces = appliesPieces
        machine = RingMachine(plan: plan, rank: link.rank, worldSize: link.worldSize, generation: identity.generation,
                              sequence: identity.sequence, checksumsData: settings.checksumData)
        idle = IdleWait(silenceDeadline: settings.silenceDeadline, blockingSpinTime: link.spinBeforeBlocking)
    }

    private var hasUnsent: Bool { firstUnsent < outgoing.count }

    mutating func run() throws(RingError) {
        outgoing = machine.initialSends(buffer: UnsafeBufferPointer(buffer))
        while true {
            link.beginPass()
            var moved = try postUnsent()
            var awaiting: RingReceive?
            var dropped = false
            if let expected = machine.nextReceive, !mustKeepBytes(for: expected) {
                awaiting = expected
                if let delivery = try link.receive() {
                    if try take(delivery, expected: expected) { moved = true } else { dropped = true }
                }
            }
            if machine.isComplete && !hasUnsent && !link.isSending(from: nil) { return }
            if moved {
                idle.progressed()
                continue
            }
            let reason: RingWaitReason = awaiting != nil ? .piece : hasUnsent ? .room : .release
            try link.checkNeighbours(awaiting: awaiting, hasUnsent: hasUnsent, waited: idle.waited)
            // After a drop, look again at once (more may be queued), but the silence goes on: only
            // progress proves the neighbour alive, not messages that anyone could have sent.
            let link = self.link
            let waited = dropped ? idle.deadlinePassed() : idle.pause { limit in link.block(for: reason, limit: limit) }
            reportDrops()
            if let waited { try silence(reason, awaiting: awaiting, waited: waited) }
        }
    }

    /// Posts the unsent pieces in order until the transport has no room; true if any went.
    private mutating func postUnsent() throws(RingError) -> Bool {
        var posted = false
        while hasUnsent {
            let send = outgoing[firstUnsent]
            guard try link.post(send, identity: identity, from: buffer) else { break }
            countSent(send)
            firstUnsent += 1
            posted = true
        }
        if !hasUnsent {
            outgoing.removeAll(keepingCapacity: true)
            firstUnsent = 0
        }
        return posted
    }

    /// An all-gather piece replaces buffer bytes: not while they are still to be sent, or
    /// still being sent from (zero-copy).
    private func mustKeepBytes(for expected: RingReceive) -> Bool {
        guard expected.operation == .overwrite else { return false }
        let range = expected.transfer.range
        return outgoing[firstUnsent...].contains { $0.range.overlaps(range) } || link.isSending(from: range)
    }

    /// Uses or drops one delivery; true when a piece was applied (progress).
    private mutating func take(_ delivery: RingDelivery<Link.Token>, expected: RingReceive) throws(RingError) -> Bool {
        let arrival: RingArrival<Link.Token>
        switch delivery {
        case let .malformed(reason):
            drop(.malformed, reason)
            return false
        case let .piece(piece):
            arrival = piece
        }
        let header = arrival.header
        switch PieceStanding(run: arrival.runID, generation: arrival.generation, sequence: header.sequence, current: identity) {
        case .foreignRun:
            link.release(arrival, keep: false)
            drop(.foreignRun, "a piece of run \(String(arrival.runID, radix: 16)) during \(identity)")
            return false
        case .stale:
            link.release(arrival, keep: false)
            drop(.stale, "a piece of generation \(arrival.generation) collective #\(header.sequence) during \(identity)")
            return false
        case .newerGeneration:
            link.release(arrival, keep: true)
            throw .newerGeneration(rank: machine.previousRank, found: arrival.generation, current: identity.generation)
        case .current:
            break
        }
        // The data part is not covered by the frame's checksum: one that does not hold the
        // elements its header announces was not made by a rank (which sends exactly those).
        guard arrival.data.count == Int(header.elementCount) * MemoryLayout<Float>.size else {
            link.release(arrival, keep: false)
            drop(.malformed, "a data part of \(arrival.data.count) bytes for \(header.elementCount) elements")
            return false
        }
        let receive = try machine.admit(header: header, data: arrival.data)
        apply(arrival.data, as: receive)
        link.release(arrival, keep: false)
        link.core.statistics.piecesReceived += 1
        return true
    }

    /// Applies an admitted piece and queues (or, where the transport allows, writes in the same
    /// pass) its forward to the next rank.
    private mutating func apply(_ data: UnsafeRawBufferPointer, as receive: RingReceive) {
        let range = receive.transfer.range
        guard appliesPieces else {
            if let forward = receive.forward { outgoing.append(machine.send(for: forward, buffer: UnsafeBufferPointer(buffer))) }
            return
        }
        let target = UnsafeMutableBufferPointer(rebasing: buffer[range])
        // One pass: reduce into the buffer and into the next rank's memory at once. Only when
        // nothing waits to go first (pieces go in plan order) and no checksum must be taken
        // over the reduced bytes. The kernel wants aligned floats (a shared-memory slot).
        if let forward = receive.forward, !settings.checksumData, !hasUnsent,
           let source = data.baseAddress, Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0,
           let destinationInBuffer = target.baseAddress {
            let send = machine.send(for: forward, buffer: UnsafeBufferPointer(buffer))
            if let destination = link.forwardingDestination(for: send, identity: identity) {
                ForwardingKernel.apply(receive.operation, incoming: source.assumingMemoryBound(to: Float.self),
                                       target: destinationInBuffer, forward: destination, count: range.count)
                link.publishForwarded(send)
                countSent(send)
                return
            }
        }
        RingMachine.apply(receive.operation, data, to: target)
        if let forward = receive.forward { outgoing.append(machine.send(for: forward, buffer: UnsafeBufferPointer(buffer))) }
    }

    private func countSent(_ send: RingMachine.Send) {
        link.core.statistics.piecesSent += 1
        link.core.statistics.bytesSent += send.range.count * MemoryLayout<Float>.size
    }

    private func drop(_ kind: RingDropKind, _ reason: @autoclosure () -> String) {
        let report = link.core.recordDrop(kind, reason: reason, endpoint: link.endpoint, reporting: settings.onDrops != nil)
        if let report { settings.onDrops?(report) }
    }

    /// Delivers the drops not yet reported, when a report is due.
    func reportDrops() {
        guard let onDrops = settings.onDrops, link.core.drops.hasPending else { return }
        if let report = link.core.drops.flush(at: .now) { onDrops(report) }
    }

    /// Another silence deadline passed while waiting for `reason`: a peer the liveness hook
    /// vouches for is a stall (reported, waited for); otherwise the wait ends in an error
    /// naming the neighbour.
    private func silence(_ reason: RingWaitReason, awaiting: RingReceive?, waited: Duration) throws(RingError) {
        let peer = reason == .piece ? machine.previousRank : machine.nextRank
        if let isPeerAlive = settings.isPeerAlive, isPeerAlive(peer) {
            link.core.statistics.stalls += 1
            settings.onStall?(peer, waited)
            return
        }
        switch reason {
        case .piece:
            throw .peerSilent(rank: peer, endpoint: nil, seconds: waited.inSeconds,
                              step: awaiting?.transfer.step ?? -1, piece: awaiting?.transfer.piece ?? -1)
        case .room:
            throw .sendStalled(rank: peer, endpoint: link.nextEndpoint, seconds: waited.inSeconds)
        case .release:
            throw .bufferStillInUse(seconds: waited.inSeconds)
        }
    }
}
