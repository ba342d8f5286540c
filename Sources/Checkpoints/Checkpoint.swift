import TensorFiles
/// Everything a run needs to continue bit-identically: the training state, the weights and the
/// optimizer's moments, as named tensors (the codec knows no layers).
public struct Checkpoint: Equatable, Sendable {
    public var state: CheckpointState
    /// Weights (float32, the reference model's names: docs/model.md), in the order of the flat parameter buffer.
    public var model: [NamedTensor]
    /// Adam moments "m.<name>" and "v.<name>" of every model tensor, or none (plain SGD).
    public var optimizer: [NamedTensor]

    public init(state: CheckpointState, model: [NamedTensor], optimizer: [NamedTensor]) {
        self.state = state
        self.model = model
        self.optimizer = optimizer
    }

    static let firstMomentPrefix = "m."
    static let secondMomentPrefix = "v."

    /// Why `optimizer` is not the moments of exactly `model` (same shapes, one "m." and one "v."
    /// each); nil when it is, or when it is empty.
    static func optimizerMismatch(model: [NamedTensor], optimizer: [NamedTensor]) -> String? {
        guard !optimizer.isEmpty else { return nil }
        var shapes: [String: [Int]] = [:]
        for tensor in model { shapes[tensor.name] = tensor.shape }
        var seen = Set<String>()
        for moment in optimizer {
            let name = moment.name
            let base: Substring
            if name.hasPrefix(firstMomentPrefix) || name.hasPrefix(secondMomentPrefix) {
                base = name.dropFirst(2)
            } else {
                return "tensor '\(name)' is neither an 'm.' nor a 'v.' moment"
            }
            guard let shape = shapes[String(base)] else { return "'\(name)' belongs to no model tensor" }
            guard shape == moment.shape else { return "'\(name)' has shape \(moment.shape), its weight \(shape)" }
            guard seen.insert(name).inserted else { return "'\(name)' appears twice" }
        }
        for tensor in model {
            for prefix in [firstMomentPrefix, secondMomentPrefix] where !seen.contains(prefix + tensor.name) {
                return "no '\(prefix + tensor.name)' for model tensor '\(tensor.name)'"
            }
        }
        return nil
    }
}
