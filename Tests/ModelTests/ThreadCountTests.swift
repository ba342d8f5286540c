import Testing
@testable import Model

/// The model's own kernels on 1, 2 and 3 threads: the pool runs every chunk once, and the loss
/// and every gradient have the same bits whatever the thread count (docs/model.md, "Threads").
@Suite struct ThreadCountTests {
    @Test func poolRunsEveryChunkOnceInASlotOfItsThreads() {
        let pool = ThreadPool(threads: 3)
        // Many short jobs in a row too: a helper that wakes after its job has finished must not
        // run a chunk of the next one twice, or with the wrong job.
        for chunks in [0, 1, 2, 7, 1000] + (0..<500).map { 2 + $0 % 5 } {
            var runs = [Int](repeating: 0, count: chunks), slots = [Int](repeating: -1, count: chunks)
            runs.withUnsafeMutableBufferPointer { runs in
                slots.withUnsafeMutableBufferPointer { slots in
                    pool.run(chunks: chunks) { chunk, slot in
                        runs[chunk] += 1
                        slots[chunk] = slot
                    }
                }
            }
            #expect(runs.allSatisfy { $0 == 1 }, "\(chunks) chunks")
            #expect(slots.allSatisfy { (0..<min(3, chunks)).contains($0) }, "\(chunks) chunks: slots \(Set(slots))")
        }
    }

    /// tiny with three images and small with two (fewer images than threads): forward and
    /// backward through every layer kind, 3x3 maps up to 64x64 (several row bands) and 1x1, with
    /// every kernel variant this CPU runs (each rounds its own way, the same for any thread count).
    @Test(arguments: [(ModelConfig.tiny, 3), (ModelConfig.small, 2)], KernelVariant.supported)
    func gradientsAreBitIdenticalForOneToThreeThreads(model: (ModelConfig, Int), kernels: KernelVariant) {
        let (config, batch) = model
        func step(threads: Int) -> (loss: UInt64, gradients: [UInt32]) {
            Self.step(config, batch: batch, threads: threads, kernels: kernels)
        }
        let single = step(threads: 1)
        let layout = ParameterLayout(config: config)
        for threads in [2, 3] {
            let threaded = step(threads: threads)
            #expect(threaded.loss == single.loss, "\(config.name), \(kernels), \(threads) threads: loss differs")
            let differing = layout.entries.filter { entry in
                threaded.gradients[entry.offset..<(entry.offset + entry.count)] != single.gradients[entry.offset..<(entry.offset + entry.count)]
            }
            #expect(differing.isEmpty, "\(config.name), \(kernels), \(threads) threads: \(differing.map(\.name).prefix(5)) differ from 1 thread")
        }
    }

    /// The AVX-512 and AVX2 kernels sum every output in the same order: a whole step of tiny
    /// (every layer kind) has the same loss and gradients with either.
    @Test(.enabled(if: KernelVariant.supported.filter(\.runsOwnKernels).count > 1, "this CPU runs at most one C variant"))
    func cKernelVariantsGiveTheSameStep() {
        let variants = KernelVariant.supported.filter(\.runsOwnKernels)
        let first = Self.step(.tiny, batch: 3, threads: 2, kernels: variants[0])
        let layout = ParameterLayout(config: .tiny)
        for kernels in variants.dropFirst() {
            let other = Self.step(.tiny, batch: 3, threads: 2, kernels: kernels)
            #expect(other.loss == first.loss, "\(kernels): loss differs from \(variants[0])")
            let differing = layout.entries.filter { entry in
                other.gradients[entry.offset..<(entry.offset + entry.count)] != first.gradients[entry.offset..<(entry.offset + entry.count)]
            }
            #expect(differing.isEmpty, "\(kernels): \(differing.map(\.name).prefix(5)) differ from \(variants[0])")
        }
    }

    /// One forward and backward of `config` on `batch` images (fixed parameters and images): the
    /// loss and the gradients, as bits.
    static func step(_ config: ModelConfig, batch: Int, threads: Int, kernels: KernelVariant)
        -> (loss: UInt64, gradients: [UInt32]) {
        let parameters = PinnedFloats(SCVAEModelTests.parameters(config, seed: 11))
        let images = SCVAEModelTests.images(config, count: batch, seed: 12)
        let model = SCVAEModel(config: config, maxBatch: batch, threads: threads, kernels: kernels)
        let gradients = PinnedFloats(zeros: model.layout.totalCount)
        let terms = model.forwardBackward(parameters: UnsafeBufferPointer(parameters.buffer), images: images,
                                          batch: batch, gradients: gradients.buffer, gradientScale: 1)
        return (terms.total.bitPattern, gradients.buffer.map(\.bitPattern))
    }
}
