/// One transfer of a piece of the buffer in a ring collective.
public struct RingTransfer: Sendable, Equatable {
    public var step: Int
    public var piece: Int
    public var range: Range<Int>
}

/// What happens to a received piece.
public enum RingPieceOperation: Sendable, Equatable {
    /// Add the received elements into the buffer (reduce-scatter).
    case accumulate
    /// Replace the buffer's elements with the received ones (all-gather, broadcast).
    case overwrite
}

/// A receive the plan expects next, and the send it unlocks.
public struct RingReceive: Sendable, Equatable {
    public var transfer: RingTransfer
    public var operation: RingPieceOperation
    /// Sent to the next rank once this piece is applied (same range, next step).
    public var forward: RingTransfer?
}

/// The complete, ordered list of transfers of one rank for one collective. Pure data; the
/// machine walks it, the tests count it.
public struct RingPlan: Sendable, Equatable {
    public var collective: Collective
    /// The rank whose data is broadcast (broadcast) or 0 (all-reduce).
    public var root: Int
    /// Sent at the start, before anything is received.
    public var initialSends: [RingTransfer]
    /// Expected receives, in the order they arrive (one sender, one FIFO connection).
    public var receives: [RingReceive]

    /// Reduce-scatter then all-gather, pipelined piece by piece.
    public static func allReduce(_ schedule: RingSchedule) -> RingPlan {
        let steps = schedule.stepCount
        var initial: [RingTransfer] = []
        if steps > 0 {
            for (piece, range) in schedule.pieces(of: schedule.chunkRange(schedule.sendChunk(atStep: 0))).enumerated() {
                initial.append(RingTransfer(step: 0, piece: piece, range: range))
            }
        }
        var receives: [RingReceive] = []
        for step in 0..<steps {
            let pieces = schedule.pieces(of: schedule.chunkRange(schedule.receiveChunk(atStep: step)))
            for (piece, range) in pieces.enumerated() {
                let forward = step + 1 < steps ? RingTransfer(step: step + 1, piece: piece, range: range) : nil
                receives.append(RingReceive(transfer: RingTransfer(step: step, piece: piece, range: range),
                                            operation: schedule.reduces(atStep: step) ? .accumulate : .overwrite,
                                            forward: forward))
            }
        }
        return RingPlan(collective: .allReduce, root: 0, initialSends: initial, receives: receives)
    }

    /// The root's buffer travels root -> root+1 -> ... -> root-1, piece by piece; each rank
    /// forwards a piece as soon as it has stored it.
    public static func broadcast(rank: Int, worldSize: Int, root: Int, elementCount: Int,
                                 pieceElements: Int = 262_144) -> RingPlan {
        precondition(root >= 0 && root < worldSize, "root \(root) of world size \(worldSize)")
        let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: elementCount, pieceElements: pieceElements)
        let pieces = schedule.pieces(of: 0..<elementCount)
        let distance = (rank - root + worldSize) % worldSize
        var plan = RingPlan(collective: .broadcast, root: root, initialSends: [], receives: [])
        guard worldSize > 1 else { return plan }
        if distance == 0 {
            plan.initialSends = pieces.enumerated().map { RingTransfer(step: 0, piece: $0.offset, range: $0.element) }
        } else {
            plan.receives = pieces.enumerated().map { piece, range in
                let transfer = RingTransfer(step: 0, piece: piece, range: range)
                return RingReceive(transfer: transfer, operation: .overwrite,
                                   forward: distance < worldSize - 1 ? transfer : nil)
            }
        }
        return plan
    }

    /// Elements this rank sends in total.
    public var elementsSent: Int {
        initialSends.reduce(0) { $0 + $1.range.count } + receives.reduce(0) { $0 + ($1.forward?.range.count ?? 0) }
    }
}
