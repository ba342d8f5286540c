import TensorFiles
import Wire

/// A worker's state arriving as named tensors (parameters, then Adam's moments), closed by
/// `CheckpointCommand.uploadComplete`. The coordinator knows no layers: names, shapes and bytes
/// pass through as they came.
struct StateUpload {
    /// A complete upload.
    struct Uploaded {
        var step: Int
        var epoch: Int
        var optimizerStep: Int
        var model: [NamedTensor]
        var optimizer: [NamedTensor]
        /// CRC32C of the parameter bytes in upload order: the replicas' parameter checksum.
        var parameterChecksum: UInt32
    }

    let workerID: String
    let step: Int
    private var state: StateAssembler

    init(workerID: String, step: Int) {
        self.workerID = workerID
        self.step = step
        state = StateAssembler(step: UInt64(step))
    }

    mutating func add(_ chunk: TensorChunk) throws(CoordinatorFailure) {
        do { try state.add(chunk) } catch { throw .upload("from \(workerID): \(error)") }
    }

    /// The upload, once `command` closed it.
    func finish(_ command: CheckpointCommand) throws(CoordinatorFailure) -> Uploaded {
        guard Int(exactly: command.step) == step, state.parametersComplete else {
            throw .upload("\(workerID) closed the upload of step \(command.step) with \(state.parameters.count) parameter tensors assembled")
        }
        func named(_ tensors: [TensorAssembler.Tensor]) throws(CoordinatorFailure) -> [NamedTensor] {
            var result: [NamedTensor] = []
            for tensor in tensors.sorted(by: { $0.index < $1.index }) {
                guard tensor.dtype == .float32 else {
                    throw .upload("tensor \(tensor.name) is \(tensor.dtype), expected float32")
                }
                result.append(NamedTensor(name: tensor.name, shape: tensor.shape.map { Int($0) }, dtype: .F32, data: tensor.bytes))
            }
            return result
        }
        let model = try named(state.parameters)
        var checksum: UInt32 = 0
        for tensor in model { checksum = crc32c(tensor.data, continuing: checksum) }
        return Uploaded(step: step, epoch: Int(clamping: command.epoch), optimizerStep: Int(clamping: command.optimizerStep),
                        model: model, optimizer: try named(state.moments), parameterChecksum: checksum)
    }
}
