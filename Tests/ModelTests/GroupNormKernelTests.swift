import Foundation
import Testing
@testable import Model

/// The vectorised GroupNorm (one-pass statistics, SIMD exp) against the scalar reference kernel
/// on random inputs, and VectorMath's exp against exp in Double.
@Suite struct GroupNormKernelTests {
    /// (positions, channels, groups): tails of the eight-lane chunks (4, 12, 20 channels), row
    /// counts that are not a multiple of the row block, one channel per group, and model shapes.
    static let shapes: [(Int, Int, Int)] = [(6, 8, 4), (7, 4, 2), (37, 12, 4), (5, 20, 20), (64, 32, 32), (33, 64, 32), (16, 128, 32)]

    /// max |a - b| relative to max |reference|: the error measure of these comparisons.
    static func relativeError(_ value: [Float], _ reference: [Float]) -> Float {
        maxAbsDifference(value, reference) / max(maxAbs(reference), .leastNormalMagnitude)
    }

    /// (swish, kernels): the Swift lanes (fallback) everywhere, and the C passes of every variant
    /// this CPU runs.
    static let variants: [(Bool, KernelVariant)] = KernelVariant.supported.flatMap { [(true, $0), (false, $0)] }

    /// Positions per band: several bands an image (5), and the model's (one band at these sizes).
    static let bandSizes = [5, GroupNorm.positionsPerBand]

    @Test(arguments: 0..<shapes.count, 0..<(variants.count * bandSizes.count))
    func forwardMatchesReference(shapeIndex: Int, variantAndBand: Int) {
        let (positions, channels, groups) = Self.shapes[shapeIndex]
        let (swish, kernels) = Self.variants[variantAndBand / Self.bandSizes.count]
        let band = Self.bandSizes[variantAndBand % Self.bandSizes.count]
        let batch = 2
        var random = KernelRandom(seed: UInt64(100 + shapeIndex))
        // An offset larger than the spread makes one-pass statistics work for their accuracy.
        let input = random.array(batch * positions * channels, scale: 3).map { $0 + 5 }
        let weight = random.array(channels), bias = random.array(channels)
        var out = [Float](repeating: 0, count: input.count), outRef = out
        var mean = [Float](repeating: 0, count: batch * groups), rstd = mean, meanRef = mean, rstdRef = mean
        GroupNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias, batch: batch,
                          positions: positions, channels: channels, groups: groups, epsilon: 1e-6, swish: swish, kernels: kernels,
                          positionsPerBand: band)
        GroupNormReference.forward(out: &outRef, mean: &meanRef, rstd: &rstdRef, inp: input, weight: weight, bias: bias,
                                   batch: batch, positions: positions, channels: channels, groups: groups,
                                   epsilon: 1e-6, swish: swish)
        #expect(Self.relativeError(mean, meanRef) <= 1e-6, "mean \(mean.prefix(4)) vs \(meanRef.prefix(4))")
        #expect(Self.relativeError(rstd, rstdRef) <= 1e-6, "rstd \(rstd.prefix(4)) vs \(rstdRef.prefix(4))")
        #expect(Self.relativeError(out, outRef) <= 1e-6, "out \(out.prefix(4)) vs \(outRef.prefix(4))")
    }

    @Test(arguments: 0..<shapes.count, 0..<(variants.count * bandSizes.count))
    func backwardMatchesReference(shapeIndex: Int, variantAndBand: Int) {
        let (positions, channels, groups) = Self.shapes[shapeIndex]
        let (swish, kernels) = Self.variants[variantAndBand / Self.bandSizes.count]
        let band = Self.bandSizes[variantAndBand % Self.bandSizes.count]
        let batch = 2
        var random = KernelRandom(seed: UInt64(200 + shapeIndex))
        let input = random.array(batch * positions * channels, scale: 2)
        let weight = random.array(channels), bias = random.array(channels)
        let dOut = random.array(input.count)
        // Both backward kernels read the same cached statistics (the reference's).
        var out = [Float](repeating: 0, count: input.count)
        var mean = [Float](repeating: 0, count: batch * groups), rstd = mean
        GroupNormReference.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias,
                                   batch: batch, positions: positions, channels: channels, groups: groups,
                                   epsilon: 1e-6, swish: swish)
        // Nonzero starting gradients check that every output accumulates.
        let start = random.array(input.count), startWeight = random.array(channels), startBias = random.array(channels)
        var dInput = start, dWeight = startWeight, dBias = startBias
        var dInputRef = start, dWeightRef = startWeight, dBiasRef = startBias
        var scratch = [Float](repeating: 0, count: batch * positions * channels)
        GroupNorm.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, mean: mean,
                           rstd: rstd, weight: weight, bias: bias, batch: batch, positions: positions,
                           channels: channels, groups: groups, swish: swish, scratch: &scratch, kernels: kernels,
                           positionsPerBand: band)
        GroupNormReference.backward(dInput: &dInputRef, dWeight: &dWeightRef, dBias: &dBiasRef, dOut: dOut, inp: input,
                                    mean: mean, rstd: rstd, weight: weight, bias: bias, batch: batch,
                                    positions: positions, channels: channels, groups: groups, swish: swish,
                                    scratch: &scratch)
        for (name, value, reference) in [("dInput", dInput, dInputRef), ("dWeight", dWeight, dWeightRef),
                                         ("dBias", dBias, dBiasRef)] {
            #expect(Self.relativeError(value, reference) <= 1e-6,
                    "\(name): \(value.prefix(4)) vs \(reference.prefix(4)), max difference \(maxAbsDifference(value, reference))")
        }
    }

    @Test(arguments: KernelVariant.supported)
    func backwardIsDeterministic(kernels: KernelVariant) {
        let (positions, channels, groups, batch) = (37, 12, 4, 2)
        var random = KernelRandom(seed: 7)
        let input = random.array(batch * positions * channels), dOut = random.array(input.count)
        let weight = random.array(channels), bias = random.array(channels)
        var out = [Float](repeating: 0, count: input.count)
        var mean = [Float](repeating: 0, count: batch * groups), rstd = mean
        GroupNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias, batch: batch,
                          positions: positions, channels: channels, groups: groups, epsilon: 1e-6, swish: true,
                          kernels: kernels)
        func gradients() -> [Float] {
            var dInput = [Float](repeating: 0, count: input.count)
            var dWeight = [Float](repeating: 0, count: channels), dBias = dWeight
            var scratch = [Float](repeating: 0, count: batch * positions * channels)
            GroupNorm.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, mean: mean,
                               rstd: rstd, weight: weight, bias: bias, batch: batch, positions: positions,
                               channels: channels, groups: groups, swish: true, scratch: &scratch, kernels: kernels)
            return dInput + dWeight + dBias
        }
        let first = gradients(), second = gradients()
        #expect(first.map(\.bitPattern) == second.map(\.bitPattern))
    }

    /// Bands of an image run as chunks on the pool, each summed from zero and added in band order:
    /// one thread and three give the same bits. (Bands of another size reorder Double sums, which
    /// almost never changes a float, so that is not asserted.)
    @Test(arguments: KernelVariant.supported, [true, false])
    func bandsGiveTheSameBitsOnAnyThreadCount(kernels: KernelVariant, swish: Bool) {
        let (positions, channels, groups, batch) = (37, 12, 4, 3)
        var random = KernelRandom(seed: 11)
        let input = random.array(batch * positions * channels, scale: 2).map { $0 + 1 }, dOut = random.array(input.count)
        let weight = random.array(channels), bias = random.array(channels), start = random.array(input.count)
        func results(threads: Int, band: Int) -> [UInt32] {
            let pool = ThreadPool(threads: threads)
            var out = [Float](repeating: 0, count: input.count)
            var mean = [Float](repeating: 0, count: batch * groups), rstd = mean
            GroupNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias, batch: batch,
                              positions: positions, channels: channels, groups: groups, epsilon: 1e-6, swish: swish,
                              kernels: kernels, pool: pool, positionsPerBand: band)
            var dInput = start, dWeight = [Float](repeating: 0, count: channels), dBias = dWeight
            var scratch = [Float](repeating: 0, count: batch * positions * channels)
            GroupNorm.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, mean: mean,
                               rstd: rstd, weight: weight, bias: bias, batch: batch, positions: positions,
                               channels: channels, groups: groups, swish: swish, scratch: &scratch, kernels: kernels,
                               pool: pool, positionsPerBand: band)
            return (out + mean + rstd + dInput + dWeight + dBias).map(\.bitPattern)
        }
        let one = results(threads: 1, band: 5), three = results(threads: 3, band: 5)
        let differing = zip(one, three).filter { $0 != $1 }.count
        #expect(differing == 0, "\(kernels): three threads differ from one in \(differing) of \(one.count) values")
    }

    /// The C variants run the same operations per channel in the same order: the forward's
    /// outputs and statistics and every gradient agree bit for bit between them.
    @Test(.enabled(if: KernelVariant.supported.filter(\.runsOwnKernels).count > 1, "this CPU runs at most one C variant"),
          arguments: 0..<shapes.count, [true, false])
    func cVariantsAgreeBitForBit(shapeIndex: Int, swish: Bool) {
        let (positions, channels, groups) = Self.shapes[shapeIndex]
        let batch = 2
        var random = KernelRandom(seed: UInt64(300 + shapeIndex))
        let input = random.array(batch * positions * channels, scale: 2), dOut = random.array(input.count)
        let weight = random.array(channels), bias = random.array(channels), start = random.array(input.count)
        func results(_ kernels: KernelVariant) -> [UInt32] {
            var out = [Float](repeating: 0, count: input.count)
            var mean = [Float](repeating: 0, count: batch * groups), rstd = mean
            GroupNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias, batch: batch,
                              positions: positions, channels: channels, groups: groups, epsilon: 1e-6, swish: swish,
                              kernels: kernels)
            var dInput = start, dWeight = [Float](repeating: 0, count: channels), dBias = dWeight
            var scratch = [Float](repeating: 0, count: batch * positions * channels)
            GroupNorm.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, mean: mean,
                               rstd: rstd, weight: weight, bias: bias, batch: batch, positions: positions,
                               channels: channels, groups: groups, swish: swish, scratch: &scratch, kernels: kernels)
            return (out + mean + rstd + dInput + dWeight + dBias).map(\.bitPattern)
        }
        let variants = KernelVariant.supported.filter(\.runsOwnKernels)
        let first = results(variants[0])
        for kernels in variants.dropFirst() {
            let differing = zip(first, results(kernels)).filter { $0 != $1 }.count
            #expect(differing == 0, "\(positions)x\(channels): \(kernels) differs from \(variants[0]) in \(differing) values")
        }
    }

    @Test func vectorExpMatchesDouble() {
        var worst = 0.0
        var x: Float = -87
        while x <= 87 {
            var lanes = Float8()
            for lane in 0..<8 { lanes[lane] = min(x + Float(lane) * 1.37e-3, 87) }
            let result = VectorMath.exp(lanes)
            for lane in 0..<8 {
                let exact = Foundation.exp(Double(lanes[lane]))
                worst = max(worst, abs(Double(result[lane]) - exact) / exact)
            }
            x += 0.0173
        }
        #expect(worst <= 2e-7, "worst relative error \(worst)")
    }

    @Test func sigmoidSaturatesCleanly() {
        let x = Float8(-1000, -100, -87.5, -20, 0, 20, 87.5, 1000)
        let s = VectorMath.sigmoid(x)
        for lane in 0..<8 {
            let exact = 1 / (1 + Foundation.exp(-Double(x[lane])))
            #expect(s[lane].isFinite && abs(Double(s[lane]) - exact) <= 1e-7 * max(exact, 1e-30) + 1e-37,
                    "sigmoid(\(x[lane])) = \(s[lane]), expected \(exact)")
        }
        let swish = x / (Float8(repeating: 1) + VectorMath.exp(-x))
        #expect(swish[0] == 0 || abs(swish[0]) < 1e-30, "swish(-1000) = \(swish[0])")
        #expect(swish[7] == 1000)
    }
}
