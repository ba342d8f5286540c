import TensorFiles
import Model
import Wire

/// A replica's state as named tensors over the control channel (docs/decisions.md: state travels as
/// named tensors; the coordinator knows no layers): the parameters with the reference model's names, then
/// Adam's moments as `m.<name>` and `v.<name>`, then a `CheckpointCommand` that closes the
/// transfer with the step, epoch and the optimizer's update count.
enum StateTransfer {
    /// Queues the whole state of `replica` (after `step`) for the coordinator.
    static func upload(_ replica: TrainingReplica, layout: ParameterLayout, step: Int, epoch: Int, control: ControlChannel) {
        let state = replica.optimizer.state
        send(WeightsFile.namedTensors(replica.parameters, layout: layout), transfer: .parameters, step: step, control: control)
        var moments: [NamedTensor] = []
        if !state.m.isEmpty {
            moments = WeightsFile.namedTensors(state.m, layout: layout, prefix: "m.")
                + WeightsFile.namedTensors(state.v, layout: layout, prefix: "v.")
        }
        send(moments, transfer: .optimizerState, step: step, control: control)
        control.send(.checkpoint(CheckpointCommand(action: .uploadComplete, step: UInt64(step), epoch: UInt64(epoch),
                                                   optimizerStep: UInt64(state.step))))
    }

    private static func send(_ tensors: [NamedTensor], transfer: TransferKind, step: Int, control: ControlChannel) {
        for chunk in TensorChunk.chunks(transfer: transfer, step: UInt64(step), float32: tensors.map { ($0.name, $0.shape, $0.data) }) {
            control.send(.tensorChunk(chunk))
        }
    }
}

/// Checkpoint state the coordinator sends to the rank that loads and broadcasts it: tensor
/// chunks, then `CheckpointCommand.restore`, in frames of the generation they are for. It is
/// assembled as it arrives, whatever the worker is doing (an older generation may still be
/// ending), and kept until a generation of the same run takes it. A broken transfer is dropped,
/// never fatal: the generation that needed it reports the state missing and the coordinator
/// sends it again.
struct RestoreStash {
    /// A complete restore, checked against nothing yet (the layout check comes at `load`).
    struct Restored {
        var step: Int
        var epoch: Int
        var optimizerStep: Int
        var parameters: [TensorAssembler.Tensor]
        var moments: [TensorAssembler.Tensor]
        /// The generation whose frames carried it.
        var generation: UInt64 = 0
    }

    enum Failure: Error, CustomStringConvertible {
        case assembly(String)
        case layout(String)

        var description: String {
            switch self {
            case let .assembly(reason): "the coordinator's state transfer is broken: \(reason)"
            case let .layout(reason): "the coordinator's state does not fit this model: \(reason)"
            }
        }
    }

    private var assembling: (generation: UInt64, state: StateAssembler)?
    private(set) var ready: Restored?

    /// Adds a chunk sent in a frame of `generation`; a chunk of a newer transfer starts afresh.
    mutating func add(_ chunk: TensorChunk, generation: UInt64) throws(Failure) {
        if let current = assembling, current.generation != generation || current.state.step != chunk.step {
            assembling = nil
        }
        var state = assembling?.state ?? StateAssembler()
        do {
            try state.add(chunk)
        } catch {
            assembling = nil
            throw .assembly("\(error)")
        }
        assembling = (generation, state)
    }

    /// The closing command: the transfer is complete (or broken); either way the next one starts afresh.
    mutating func finish(_ command: CheckpointCommand, generation: UInt64) throws(Failure) {
        defer { assembling = nil }
        guard let current = assembling, current.generation == generation, current.state.parametersComplete,
              current.state.step == command.step else {
            let held = assembling.map { "\($0.state.parameters.count) parameter tensors of step \($0.state.step.map(String.init) ?? "none")" } ?? "nothing"
            throw .assembly("restore of step \(command.step) closed with \(held) assembled")
        }
        ready = Restored(step: Int(clamping: command.step), epoch: Int(clamping: command.epoch),
                         optimizerStep: Int(clamping: command.optimizerStep),
                         parameters: current.state.parameters, moments: current.state.moments, generation: generation)
    }

    /// Takes the complete restore of `step` sent for `generation`, if there is one (a restore sent
    /// for a newer generation stays for it).
    mutating func take(step: Int, generation: UInt64) -> Restored? {
        guard let restored = ready, restored.step == step, restored.generation == generation else { return nil }
        ready = nil
        return restored
    }

    /// Forgets everything (a new coordinator: its transfers start anew).
    mutating func forget() {
        assembling = nil
        ready = nil
    }

    /// Loads `restored` into `replica`; the tensors must match the layout by name and shape.
    static func load(_ restored: Restored, into replica: TrainingReplica) throws(Failure) {
        let layout = replica.model.layout
        func values(_ tensors: [TensorAssembler.Tensor]) throws(Failure) -> [String: TensorValues] {
            var result: [String: TensorValues] = [:]
            for tensor in tensors {
                guard tensor.dtype == .float32 else { throw .layout("\(tensor.name) is \(tensor.dtype), expected float32") }
                let floats = tensor.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                result[tensor.name] = TensorValues(shape: tensor.shape.map { Int($0) }, values: floats)
            }
            return result
        }
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        var state = replica.optimizer.state
        do {
            let named = try values(restored.parameters)
            _ = try parameters.withUnsafeMutableBufferPointer { try loadParameters(named, into: $0, layout: layout) }
            if !state.m.isEmpty {
                let moments = try values(restored.moments)
                _ = try state.m.withUnsafeMutableBufferPointer { try loadParameters(moments, into: $0, layout: layout, prefix: "m.") }
                _ = try state.v.withUnsafeMutableBufferPointer { try loadParameters(moments, into: $0, layout: layout, prefix: "v.") }
            }
        } catch let error as Failure {
            throw error
        } catch {
            throw .layout("\(error)")
        }
        state.step = restored.optimizerStep
        replica.parameters = parameters
        replica.optimizer = Optimizer(settings: replica.optimizer.settings, parameterCount: layout.totalCount, state: state)
    }
}
