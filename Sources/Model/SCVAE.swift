/// Loss terms of a batch, SUMMED over its samples.
///
/// Per sample: recon = mean over its pixels of (xHat - x)^2; latent = latentWeight * mean over its
/// latents of (h - hHat)^2; total = recon + latent. Sums (not means) so that workers can add them
/// across ranks and divide by the global sample count. Sparsity = zeroCodes / codeCount.
public struct LossTerms: Sendable, Equatable {
    public var total: Double
    public var recon: Double
    public var latent: Double
    public var zeroCodes: Int
    public var codeCount: Int
    public var sampleCount: Int

    public init(total: Double = 0, recon: Double = 0, latent: Double = 0, zeroCodes: Int = 0, codeCount: Int = 0, sampleCount: Int = 0) {
        self.total = total
        self.recon = recon
        self.latent = latent
        self.zeroCodes = zeroCodes
        self.codeCount = codeCount
        self.sampleCount = sampleCount
    }

    /// Fraction of exactly-zero codes.
    public var sparsity: Double { codeCount == 0 ? 0 : Double(zeroCodes) / Double(codeCount) }
}

/// The whole SC-VAE: encoder -> LISTA -> decoder, with caches for up to `maxBatch` images.
///
/// Legend: B = batch, S = image side, s = latent side, P = s*s positions per image,
/// C = latent channels, K = atoms. images NCHW [B, 3, S, S] in [-1, 1] (converted to NHWC inside);
/// h, hHat [B*P, C]; codes [B*P, K]; xHat NHWC [B, S, S, 3]. Parameters and gradients are the flat
/// buffers of `layout`. Not thread-safe: one model per thread.
public final class SCVAEModel {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let maxBatch: Int
    private let workspace: Workspace
    private let encoder: LayerChain
    private let decoder: LayerChain
    private let lista: LISTA
    private let images: FloatStorage
    private let hHat: FloatStorage
    private let codes: FloatStorage
    private let dXHat: FloatStorage
    private let dH: FloatStorage
    private let dHHat: FloatStorage
    private let dictionaryOffset: Int
    private let cOffset: Int
    /// The parameter ranges whose gradients are final after each stage of backward, in the
    /// order backward finishes them: decoder, then LISTA's, then encoder (see `forwardBackward`).
    public let backwardStages: [Range<Int>]

    /// `threads`: the threads its own kernels run on (the process's OpenBLAS threads by default);
    /// results are bit-identical whatever the count. `kernels`: which of them run (the process's
    /// choice by default, KernelVariant.selected); it must be one this CPU supports.
    public init(config: ModelConfig, maxBatch: Int, threads: Int = BLAS.threads, kernels: KernelVariant = .selected) {
        precondition(maxBatch >= 1)
        self.config = config
        self.maxBatch = maxBatch
        let workspace = Workspace(threads: max(1, threads), kernels: kernels)
        self.workspace = workspace
        let layout = ParameterLayout(config: config)
        self.layout = layout
        encoder = Encoder.build(config: config, layout: layout, maxBatch: maxBatch, workspace: workspace)
        decoder = Decoder.build(config: config, layout: layout, maxBatch: maxBatch, workspace: workspace)
        let positions = maxBatch * config.latentSize * config.latentSize
        lista = LISTA(config: config, maxPositions: positions)
        let imageFloats = 3 * config.imageSize * config.imageSize
        images = FloatStorage(count: maxBatch * imageFloats)
        dXHat = FloatStorage(count: maxBatch * imageFloats)
        hHat = FloatStorage(count: positions * config.latentChannels)
        dH = FloatStorage(count: positions * config.latentChannels)
        dHHat = FloatStorage(count: positions * config.latentChannels)
        codes = FloatStorage(count: positions * config.atoms)
        dictionaryOffset = layout.entry("Dict").offset
        cOffset = layout.entry("c").offset
        backwardStages = Self.stages(layout)
        precondition(encoder.outputSize == latentSize && decoder.inputSize == latentSize && decoder.outputSize == imageSize)
    }

    /// GEMM FLOPs of one image's forward pass through encoder, LISTA and decoder (for benchmarks;
    /// backward costs about twice this).
    public var forwardFlopsPerImage: Double {
        let (p, c, k, t) = (Double(latentPositions), Double(config.latentChannels), Double(config.atoms), Double(config.istaIterations))
        return encoder.forwardFlopsPerImage + decoder.forwardFlopsPerImage + 2 * p * (2 * c * k + t * k * k)
    }

    /// Floats per image and per image's latent grid.
    private var imageSize: Int { 3 * config.imageSize * config.imageSize }
    private var latentPositions: Int { config.latentSize * config.latentSize }
    private var latentSize: Int { latentPositions * config.latentChannels }

    /// Forward pass that leaves every cache in place for backward.
    private func run(parameters: UnsafePointer<Float>, images source: UnsafePointer<Float>, batch: Int)
        -> (h: UnsafePointer<Float>, xHat: UnsafePointer<Float>, zeros: Int)
    {
        precondition(batch >= 1 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        loadImages(source, batch: batch)
        let h = encoder.forward(images.pointer, batch: batch, parameters: parameters)
        let zeros = lista.forward(h: h, dictionary: parameters + dictionaryOffset, c: parameters[cOffset],
                                  positions: batch * latentPositions, imagePositions: latentPositions,
                                  hHat: hHat.pointer, codes: codes.pointer)
        let xHat = decoder.forward(hHat.pointer, batch: batch, parameters: parameters)
        return (h, xHat, zeros)
    }

    /// Loss terms summed over samples; when `gradientScale` is given, also writes
    /// dXHat and dH / dHHat (direct latent-term parts) for gradientScale * sum of losses.
    private func lossTerms(h: UnsafePointer<Float>, xHat: UnsafePointer<Float>, batch: Int, zeros: Int,
                           gradientScale: Float?) -> LossTerms {
        let pixels = imageSize, latents = latentSize
        let weight = Double(config.latentWeight)
        var terms = LossTerms(zeroCodes: zeros, codeCount: batch * latentPositions * config.atoms, sampleCount: batch)
        for b in 0..<batch {
            var recon = 0.0
            for i in (b * pixels)..<((b + 1) * pixels) {
                let d = Double(xHat[i]) - Double(images.pointer[i])
                recon += d * d
            }
            var latent = 0.0
            for i in (b * latents)..<((b + 1) * latents) {
                let d = Double(h[i]) - Double(hHat.pointer[i])
                latent += d * d
            }
            terms.recon += recon / Double(pixels)
            terms.latent += weight * latent / Double(latents)
        }
        terms.total = terms.recon + terms.latent
        if let scale = gradientScale {
            let reconFactor = 2 * scale / Float(pixels)
            for i in 0..<(batch * pixels) { dXHat.pointer[i] = reconFactor * (xHat[i] - images.pointer[i]) }
            let latentFactor = 2 * scale * config.latentWeight / Float(latents)
            for i in 0..<(batch * latents) {
                let g = latentFactor * (h[i] - hHat.pointer[i])
                dH.pointer[i] = g
                dHHat.pointer[i] = -g
            }
        }
        return terms
    }

    /// Each stage's parameters are contiguous in the layout (LISTA's Dict and c, the encoder, the
    /// decoder, in state_dict order); a stage is the range of one module's names.
    private static func stages(_ layout: ParameterLayout) -> [Range<Int>] {
        func range(_ belongs: (String) -> Bool) -> Range<Int> {
            let entries = layout.entries.filter { belongs($0.name) }
            let lower = entries.map(\.offset).min() ?? 0, upper = entries.map { $0.offset + $0.count }.max() ?? 0
            precondition(entries.reduce(0) { $0 + $1.count } == upper - lower, "a backward stage is not contiguous")
            return lower..<upper
        }
        let stages = [range { $0.hasPrefix("decoder.") },
                      range { !$0.hasPrefix("decoder.") && !$0.hasPrefix("encoder.") },
                      range { $0.hasPrefix("encoder.") }]
        precondition(stages.reduce(0) { $0 + $1.count } == layout.totalCount, "backward stages do not cover the layout")
        return stages
    }

    /// images: NCHW float32 in [-1, 1], batch x 3 x S x S. Accumulates (+=) into `gradients` the
    /// gradient of gradientScale * (sum over samples of per-sample loss). Returns the loss terms
    /// summed over samples. `onStageDone(i)` is called as soon as the gradients of
    /// `backwardStages[i]` are final (so their all-reduce can overlap the rest of backward).
    public func forwardBackward(parameters: UnsafeBufferPointer<Float>, images source: UnsafePointer<Float>, batch: Int,
                                gradients: UnsafeMutableBufferPointer<Float>, gradientScale: Float,
                                onStageDone: ((Int) -> Void)? = nil) -> LossTerms {
        precondition(parameters.count == layout.totalCount && gradients.count == layout.totalCount)
        let params = parameters.baseAddress!, grads = gradients.baseAddress!
        let (h, xHat, zeros) = run(parameters: params, images: source, batch: batch)
        let terms = lossTerms(h: h, xHat: xHat, batch: batch, zeros: zeros, gradientScale: gradientScale)
        // dHHat already holds the latent term's direct part; the decoder adds the reconstruction's.
        decoder.backward(dOutput: dXHat.pointer, dInput: dHHat.pointer, batch: batch, parameters: params, gradients: grads)
        onStageDone?(0)
        lista.backward(dHHat: dHHat.pointer, h: h, dictionary: params + dictionaryOffset, c: params[cOffset],
                       positions: batch * latentPositions, dH: dH.pointer,
                       dDictionary: grads + dictionaryOffset, dC: grads + cOffset)
        onStageDone?(1)
        encoder.backward(dOutput: dH.pointer, dInput: nil, batch: batch, parameters: params, gradients: grads)
        onStageDone?(2)
        return terms
    }

    /// Evaluation: loss terms, and optionally the reconstruction (NCHW, batch x 3 x S x S) written
    /// to `reconstruction`.
    public func forward(parameters: UnsafeBufferPointer<Float>, images source: UnsafePointer<Float>, batch: Int,
                        reconstruction: UnsafeMutablePointer<Float>?) -> LossTerms {
        precondition(parameters.count == layout.totalCount)
        let (h, xHat, zeros) = run(parameters: parameters.baseAddress!, images: source, batch: batch)
        if let reconstruction { storeImages(xHat, batch: batch, into: reconstruction) }
        return lossTerms(h: h, xHat: xHat, batch: batch, zeros: zeros, gradientScale: nil)
    }

    /// Encoder and LISTA only: writes the codes z [batch * P, K] (rows in (b, y, x) order, the
    /// codes `forward` decodes) to `codes`. Returns the number of exactly-zero codes.
    public func encode(parameters: UnsafeBufferPointer<Float>, images source: UnsafePointer<Float>, batch: Int,
                       codes output: UnsafeMutablePointer<Float>) -> Int {
        precondition(parameters.count == layout.totalCount)
        precondition(batch >= 1 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        let params = parameters.baseAddress!
        loadImages(source, batch: batch)
        let h = encoder.forward(images.pointer, batch: batch, parameters: params)
        return lista.forward(h: h, dictionary: params + dictionaryOffset, c: params[cOffset],
                             positions: batch * latentPositions, imagePositions: latentPositions,
                             hHat: hHat.pointer, codes: output)
    }

    /// The decoder from given codes z [batch * P, K]: hHat = z Dᵀ, as LISTA computes it, then the
    /// decoder; writes the images (NCHW, batch x 3 x S x S) to `reconstruction`. Fed the codes of
    /// `encode`, it gives exactly `forward`'s reconstruction.
    public func decode(parameters: UnsafeBufferPointer<Float>, codes source: UnsafePointer<Float>, batch: Int,
                       reconstruction: UnsafeMutablePointer<Float>) {
        precondition(parameters.count == layout.totalCount)
        precondition(batch >= 1 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        let params = parameters.baseAddress!
        let (c, k) = (config.latentChannels, config.atoms)
        // One image at a time, as LISTA computes hHat (its ImageRows).
        for image in 0..<batch {
            let first = image * latentPositions
            BLAS.sgemm(transB: true, m: latentPositions, n: c, k: k, a: source + first * k, lda: k,
                       b: params + dictionaryOffset, ldb: k, c: hHat.pointer + first * c, ldc: c)
        }
        let xHat = decoder.forward(hHat.pointer, batch: batch, parameters: params)
        storeImages(xHat, batch: batch, into: reconstruction)
    }

    /// NCHW images -> the NHWC input buffer.
    private func loadImages(_ source: UnsafePointer<Float>, batch: Int) {
        let plane = config.imageSize * config.imageSize
        for b in 0..<batch {
            let src = source + b * imageSize, dst = images.pointer + b * imageSize
            for p in 0..<plane {
                for c in 0..<3 { dst[p * 3 + c] = src[c * plane + p] }
            }
        }
    }

    /// NHWC decoder output -> NCHW images.
    private func storeImages(_ xHat: UnsafePointer<Float>, batch: Int, into output: UnsafeMutablePointer<Float>) {
        let plane = config.imageSize * config.imageSize
        for b in 0..<batch {
            let src = xHat + b * imageSize, dst = output + b * imageSize
            for p in 0..<plane {
                for c in 0..<3 { dst[c * plane + p] = src[p * 3 + c] }
            }
        }
    }
}

extension SCVAEModel {
    /// After a forward pass of `batch` images: adds to `usage[k]` how many of their latent
    /// positions use atom k (a non-zero code). `usage` has `config.atoms` entries.
    public func countActiveAtoms(batch: Int, into usage: inout [UInt64]) {
        let atoms = config.atoms
        precondition(usage.count == atoms && batch >= 1 && batch <= maxBatch)
        let z = codes.pointer
        for row in 0..<(batch * latentPositions) {
            let base = z + row * atoms
            for k in 0..<atoms where base[k] != 0 { usage[k] += 1 }
        }
    }
}
