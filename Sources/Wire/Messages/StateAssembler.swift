/// A replica's state arriving as named tensors of one step: the parameters (`TransferKind.parameters`)
/// and the optimizer's moments (`.optimizerState`, none for SGD). Used on both ends: the
/// coordinator assembling rank 0's upload, the worker assembling the checkpoint it restores.
public struct StateAssembler: Sendable {
    /// The step of the state, set by the first chunk.
    public private(set) var step: UInt64?
    public private(set) var parameters: [TensorAssembler.Tensor] = []
    public private(set) var moments: [TensorAssembler.Tensor] = []
    private var parameterAssembler = TensorAssembler()
    private var momentAssembler = TensorAssembler()

    public init(step: UInt64? = nil) {
        self.step = step
    }

    /// Adds a chunk of either transfer; a chunk of another step is refused.
    public mutating func add(_ chunk: TensorChunk) throws(TensorAssembler.AssemblyError) {
        if let step, step != chunk.step {
            throw .otherTransfer(expected: "state of step \(step)", found: "\(chunk.transfer) step \(chunk.step)")
        }
        switch chunk.transfer {
        case .parameters: if let tensor = try parameterAssembler.add(chunk) { parameters.append(tensor) }
        case .optimizerState: if let tensor = try momentAssembler.add(chunk) { moments.append(tensor) }
        }
        step = chunk.step
    }

    /// True once every parameter tensor has arrived (the moments may be none at all).
    public var parametersComplete: Bool { parameterAssembler.isComplete }
}

extension TensorChunk {
    /// The chunks of `tensors` (float32, in order) as one transfer of `step`.
    public static func chunks(transfer: TransferKind, step: UInt64, float32 tensors: [(name: String, shape: [Int], bytes: [UInt8])])
        -> [TensorChunk] {
        tensors.enumerated().flatMap { i, tensor in
            chunks(transfer: transfer, step: step, tensorIndex: UInt32(i), tensorCount: UInt32(tensors.count), name: tensor.name,
                   dtype: .float32, shape: tensor.shape.map { UInt64($0) }, bytes: tensor.bytes)
        }
    }
}
