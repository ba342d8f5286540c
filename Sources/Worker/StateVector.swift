import Model

/// A replica's whole state as one float buffer, for the broadcast that starts a generation:
/// parameters, then Adam's moments (none for SGD), then a trailer with the applied step and the
/// optimizer's update count, each split in 16-bit halves (exact as floats; the broadcast copies
/// bytes and adds nothing).
enum StateVector {
    static let trailerCount = 4

    static func count(parameters: Int, moments: Int) -> Int { parameters + 2 * moments + trailerCount }

    static func pack(_ replica: TrainingReplica, appliedStep: Int) -> [Float] {
        let state = replica.optimizer.state
        var vector = [Float]()
        vector.reserveCapacity(count(parameters: replica.parameters.count, moments: state.m.count))
        vector += replica.parameters
        vector += state.m
        vector += state.v
        vector += halves(appliedStep) + halves(state.step)
        return vector
    }

    /// A zeroed vector of the right size for `replica` (the receiving side of the broadcast).
    static func empty(like replica: TrainingReplica) -> [Float] {
        [Float](repeating: 0, count: count(parameters: replica.parameters.count, moments: replica.optimizer.state.m.count))
    }

    /// Loads `vector` into `replica`; returns the applied step it carries.
    static func unpack(_ vector: [Float], into replica: TrainingReplica) -> Int {
        let n = replica.parameters.count
        let moments = replica.optimizer.state.m.count
        precondition(vector.count == count(parameters: n, moments: moments), "state vector of \(vector.count) floats")
        replica.parameters = Array(vector[0..<n])
        let m = Array(vector[n..<(n + moments)])
        let v = Array(vector[(n + moments)..<(n + 2 * moments)])
        let t = n + 2 * moments
        let applied = whole(vector[t], vector[t + 1])
        let updates = whole(vector[t + 2], vector[t + 3])
        replica.optimizer = Optimizer(settings: replica.optimizer.settings, parameterCount: n,
                                      state: OptimizerState(step: updates, m: m, v: v))
        return applied
    }

    private static func halves(_ value: Int) -> [Float] {
        precondition(value >= 0 && value < 1 << 32, "\(value) out of range")
        return [Float(value >> 16), Float(value & 0xFFFF)]
    }

    private static func whole(_ high: Float, _ low: Float) -> Int { Int(high) << 16 | Int(low) }
}
