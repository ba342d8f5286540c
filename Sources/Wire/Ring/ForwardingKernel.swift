/// The ring's reduction and the copy to the next rank in one pass over a piece: what
/// `RingMachine.apply` does to `target`, with the same result also stored into `forward`
/// (the next rank's slot). Each element is the same single float addition as in
/// `RingMachine.apply`, so results stay bit-identical to the ZeroMQ ring's.
enum ForwardingKernel {
    static func apply(_ operation: RingPieceOperation, incoming: UnsafePointer<Float>,
                      target: UnsafeMutablePointer<Float>, forward: UnsafeMutablePointer<Float>, count: Int) {
        switch operation {
        case .accumulate:
            for index in 0..<count {
                let sum = target[index] + incoming[index]
                target[index] = sum
                forward[index] = sum
            }
        case .overwrite:
            target.update(from: incoming, count: count)
            forward.update(from: incoming, count: count)
        }
    }
}
