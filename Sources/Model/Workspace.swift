/// Owned float storage for activations and caches, freed with its owner.
///
/// Layers keep their outputs and caches in these for up to `maxBatch` images (llm.c style: allocate
/// once, reuse every step).
final class FloatStorage {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }

    deinit { pointer.deallocate() }
}

/// Scratch buffers shared by all layers of one model, one per role, and the threads they run on.
///
/// Backward passes run one layer at a time, so a role's buffer is never needed by two layers at
/// once; sharing them keeps memory near one copy of the activations. A slot grows on demand, which
/// only invalidates earlier pointers to that same slot. Chunks that run at the same time on the
/// pool use `scratch(for:)`, the slots of the pool thread they run on.
final class Workspace {
    /// The threads the model's own kernels run on.
    let pool: ThreadPool
    /// Which of our kernels the layers run (KernelVariant.swift); one supported by this CPU.
    let kernels: KernelVariant
    /// One set of slots per pool thread, by its slot in the job (empty in those sets themselves).
    private let threadScratch: [Workspace]

    init(threads: Int = 1, kernels: KernelVariant = .selected) {
        precondition(kernels.isSupported, "this CPU does not run the \(kernels) kernels")
        let pool = ThreadPool(threads: threads)
        self.pool = pool
        self.kernels = kernels
        threadScratch = (0..<threads).map { _ in Workspace(sharing: pool, kernels: kernels) }
    }

    private init(sharing pool: ThreadPool, kernels: KernelVariant) {
        self.pool = pool
        self.kernels = kernels
        threadScratch = []
    }

    /// The slots of the pool thread with job slot `slot` (ThreadPool.run), for a chunk running on it.
    func scratch(for slot: Int) -> Workspace { threadScratch[slot] }

    enum Slot: Int, CaseIterable {
        /// Ping-pong gradients between the layers of an Encoder or Decoder chain.
        case chainGradientA, chainGradientB
        /// Gradients inside a ResnetBlock (between its norms and convolutions).
        case blockGradientA, blockGradientB
        /// Gradients inside an AttnBlock.
        case attentionNorm, attentionQuery, attentionKey, attentionValue, attentionMixed, attentionScores
        /// GroupNorm backward: the gradient at the pre-swish output of the batch.
        case normGradient
        /// Convolution: repacked weights [kh, kw, in, out], their gradient, and im2col rows.
        case convWeight, convWeightGradient, convColumns
        /// Convolution backward: the flipped weight [kh, kw, out, in] that maps dOut to dInput.
        case convFlippedWeight
        /// Tap-GEMM convolution: a weight copied to a padded row stride (Conv2dDirect.leadingDimension).
        case convStridedWeight
        /// Tap-GEMM weight gradient: the sums of its parts but the first (Conv2dDirect.PartSums).
        case convPartSums
        /// Shifted-GEMM convolution: wide output rows and the padded output gradient.
        case convWide, convPaddedGradient
    }

    private var pointers: [UnsafeMutablePointer<Float>?] = Array(repeating: nil, count: Slot.allCases.count)
    private var capacities: [Int] = Array(repeating: 0, count: Slot.allCases.count)

    /// A buffer of at least `count` floats for this role (contents unspecified).
    func floats(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let index = slot.rawValue
        if capacities[index] < count {
            pointers[index]?.deallocate()
            pointers[index] = .allocate(capacity: count)
            capacities[index] = count
        }
        return pointers[index]!
    }

    /// A zero-filled buffer of `count` floats for this role.
    func zeroed(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let buffer = floats(slot, count)
        buffer.update(repeating: 0, count: count)
        return buffer
    }

    deinit { for pointer in pointers { pointer?.deallocate() } }
}
