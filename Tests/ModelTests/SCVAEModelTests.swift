import Foundation
import Testing
@testable import Model

/// The whole model: finite-difference spot checks through forwardBackward, the gradient contract
/// (accumulation, scaling, determinism), and a short overfitting run.
@Suite struct SCVAEModelTests {
    /// Parameters for tests: Xavier-style convs, norms perturbed around (1, 0) so every path is
    /// exercised, and the DCT dictionary with its c (model-core's initialDictionary).
    static func parameters(_ config: ModelConfig, seed: UInt64) -> [Float] {
        let layout = ParameterLayout(config: config)
        var values = randomParameters(layout, seed: seed, biasScale: 0.05)
        let (dictionary, c) = initialDictionary(config: config)
        let entry = layout.entry("Dict")
        for i in 0..<entry.count { values[entry.offset + i] = dictionary[i] }
        values[layout.entry("c").offset] = c
        return values
    }

    /// Smooth coloured patterns in [-1, 1], NCHW.
    static func images(_ config: ModelConfig, count: Int, seed: UInt64) -> [Float] {
        var random = KernelRandom(seed: seed)
        let side = config.imageSize
        var pixels = [Float](repeating: 0, count: count * 3 * side * side)
        for b in 0..<count {
            for c in 0..<3 {
                let (fy, fx, phase) = (random.next() * 0.4, random.next() * 0.4, random.next() * 3)
                for y in 0..<side {
                    for x in 0..<side {
                        pixels[((b * 3 + c) * side + y) * side + x] = 0.9 * sinf(fy * Float(y) + fx * Float(x) + phase)
                    }
                }
            }
        }
        return pixels
    }

    @Test func finiteDifferenceSpotChecks() {
        let config = ModelConfig.tiny
        let model = SCVAEModel(config: config, maxBatch: 2)
        let parameters = PinnedFloats(Self.parameters(config, seed: 1))
        let images = Self.images(config, count: 2, seed: 2)
        let gradients = PinnedFloats(zeros: model.layout.totalCount)
        let terms = model.forwardBackward(parameters: UnsafeBufferPointer(parameters.buffer), images: images, batch: 2,
                                          gradients: gradients.buffer, gradientScale: 1)
        #expect(terms.sampleCount == 2 && terms.codeCount == 2 * 64 * config.atoms)
        #expect(terms.zeroCodes > 0 && terms.zeroCodes < terms.codeCount, "sparsity \(terms.sparsity)")
        func loss() -> Double {
            model.forward(parameters: UnsafeBufferPointer(parameters.buffer), images: images, batch: 2, reconstruction: nil).total
        }
        let names = [
            "encoder.conv_in.weight", "encoder.down.0.block.0.norm1.weight", "encoder.down.0.downsample.conv.weight",
            "encoder.down.1.block.0.nin_shortcut.weight", "encoder.down.2.attn.0.q.weight", "encoder.mid.attn_1.v.bias",
            "encoder.norm_out.bias", "encoder.conv_out.weight", "encoder.conv_out.bias", "Dict", "c",
            "decoder.conv_in.weight", "decoder.mid.attn_1.proj_out.weight", "decoder.up.2.block.1.conv2.weight",
            "decoder.up.1.upsample.conv.weight", "decoder.up.0.block.0.norm2.bias", "decoder.conv_out.weight",
        ]
        var random = KernelRandom(seed: 3)
        var checks: [GradientCheck] = []
        var bad: [GradientCheck] = []
        for name in names {
            let entry = model.layout.entry(name)
            let grads = Array(gradients.buffer[entry.range])
            var picks = Set([grads.indices.max(by: { abs(grads[$0]) < abs(grads[$1]) })!])
            while picks.count < min(3, entry.count) { picks.insert(random.index(entry.count)) }
            var tensorChecks: [GradientCheck] = []
            for i in picks.sorted() {
                // Parameters upstream of LISTA move many soft-threshold inputs at once; a small step
                // keeps them from crossing theta (a kink) between the two evaluations. Not so c
                // (7.28 here), which moves every threshold: a code crosses theta every 0.002 of c or
                // so, and over +-1e-3 one crossing and the loss's float rounding (a change of 7e-6
                // against 5e-7 between OpenBLAS's kernel sets) decided the difference (3.19e-3 to
                // 3.52e-3 by kernels, analytic 3.52e-3). Over +-1e-2 the dozen crossings act as
                // curvature: 3.64e-3 to 3.65e-3 with every kernel variant and OpenBLAS kernel set.
                let upstream = name.hasPrefix("encoder") || name == "Dict"
                let epsilon: Float = name == "c" ? 1e-2 : upstream ? 1e-3 : 5e-3
                tensorChecks.append(GradientCheck(name: name, index: i, analytic: Double(grads[i]),
                                                  numeric: centralDifference(parameters.pointer + entry.offset + i, epsilon: epsilon, loss)))
            }
            checks += tensorChecks
            bad += gradientMismatches(tensorChecks, relative: 5e-2, absolute: 2e-2 * Double(maxAbs(grads)))
        }
        let worst = checks.map { abs($0.analytic - $0.numeric) / max(abs($0.numeric), 1e-12) }.max() ?? 0
        print("tiny finite differences: \(checks.count) checks, worst relative difference \(worst)")
        for check in checks { print("  ", check) }
        #expect(bad.isEmpty, "\(bad.count) of \(checks.count) mismatched: \(bad)\nall: \(checks)")
    }

    @Test func gradientsAccumulateScaleAndAreDeterministic() {
        let config = ModelConfig.tiny
        let model = SCVAEModel(config: config, maxBatch: 3)
        let parameters = Self.parameters(config, seed: 4)
        let images = Self.images(config, count: 3, seed: 5)
        let n = model.layout.totalCount
        func run(_ scale: Float, times: Int) -> ([Float], LossTerms) {
            var gradients = [Float](repeating: 0, count: n)
            var terms = LossTerms()
            parameters.withUnsafeBufferPointer { p in
                gradients.withUnsafeMutableBufferPointer { g in
                    for _ in 0..<times { terms = model.forwardBackward(parameters: p, images: images, batch: 3, gradients: g, gradientScale: scale) }
                }
            }
            return (gradients, terms)
        }
        let (once, terms) = run(1, times: 1)
        let (again, termsAgain) = run(1, times: 1)
        #expect(once == again, "same inputs must give bit-identical gradients")
        #expect(terms == termsAgain)
        let (twice, _) = run(1, times: 2)
        let (third, _) = run(1.0 / 3, times: 1)
        let scale = Double(maxAbs(once))
        #expect(Double(maxAbsDifference(twice, once.map { 2 * $0 })) <= 1e-5 * scale, "gradients must accumulate")
        #expect(Double(maxAbsDifference(third, once.map { $0 / 3 })) <= 1e-5 * scale, "gradientScale scales")
        let evaluated = parameters.withUnsafeBufferPointer {
            model.forward(parameters: $0, images: images, batch: 3, reconstruction: nil)
        }
        #expect(evaluated == terms)
        #expect(abs(terms.total - terms.recon - terms.latent) < 1e-9)
    }

    @Test func reconstructionIsNCHWOfTheSameBatch() {
        let config = ModelConfig.tiny
        let model = SCVAEModel(config: config, maxBatch: 2)
        let parameters = Self.parameters(config, seed: 6)
        let images = Self.images(config, count: 2, seed: 7)
        var reconstruction = [Float](repeating: .nan, count: images.count)
        let terms = parameters.withUnsafeBufferPointer {
            model.forward(parameters: $0, images: images, batch: 2, reconstruction: &reconstruction)
        }
        // recon (a sum over samples of per-sample means) must agree with the NCHW reconstruction.
        var sum = 0.0
        for i in 0..<images.count { sum += Double((reconstruction[i] - images[i]) * (reconstruction[i] - images[i])) }
        #expect(abs(sum / Double(images.count / 2) - terms.recon) <= 1e-4 * terms.recon)
    }

    /// Overfits four images with a small Adam loop written here; the loss must fall at least 10x.
    @Test func tinyOverfitsFourImages() {
        let config = ModelConfig.tiny
        let model = SCVAEModel(config: config, maxBatch: 4)
        // The real initialisation (Xavier, GroupNorm (1, 0), DCT dictionary).
        var parameters = [Float](repeating: 0, count: model.layout.totalCount)
        parameters.withUnsafeMutableBufferPointer { initializeParameters($0, layout: model.layout, config: config, seed: 8) }
        let images = Self.images(config, count: 4, seed: 9)
        let n = parameters.count
        var m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
        var gradients = [Float](repeating: 0, count: n)
        let (lr, beta1, beta2): (Float, Float, Float) = (2e-3, 0.9, 0.99)
        var losses: [Double] = []
        let steps = 80
        for step in 1...steps {
            for i in 0..<n { gradients[i] = 0 }
            let terms = parameters.withUnsafeBufferPointer { p in
                gradients.withUnsafeMutableBufferPointer { g in
                    model.forwardBackward(parameters: p, images: images, batch: 4, gradients: g, gradientScale: 0.25)
                }
            }
            losses.append(terms.total / 4)
            let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
            for i in 0..<n {
                m[i] = beta1 * m[i] + (1 - beta1) * gradients[i]
                v[i] = beta2 * v[i] + (1 - beta2) * gradients[i] * gradients[i]
                parameters[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + 1e-8)
            }
        }
        let first = losses[0], last = losses.suffix(5).min()!
        print("tiny overfit losses:", stride(from: 0, to: losses.count, by: 10).map { String(format: "%.4f", losses[$0]) })
        #expect(last * 10 <= first, "loss \(first) -> \(last): \(losses.map { String(format: "%.4f", $0) })")
    }
}
