import Testing
@testable import Model

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct OptimizerTests {
    /// Runs `optimizer` on `params` with one gradient vector per update.
    static func run(_ optimizer: inout Optimizer, _ params: inout [Float], _ gradients: [[Float]]) -> [Optimizer.StepReport] {
        gradients.map { g in
            params.withUnsafeMutableBufferPointer { p in
                g.withUnsafeBufferPointer { optimizer.update(parameters: p, gradients: $0) }
            }
        }
    }

    @Test func adamMatchesAHandComputedExampleWithWarmUp() {
        // lr warms up over 2 updates to 0.1: rates 0.05, 0.1, 0.1. Betas (0.5, 0.9).
        let settings = OptimizerSettings(kind: .adam, schedule: LearningRateSchedule(peak: 0.1, warmupSteps: 2))
        var optimizer = Optimizer(settings: settings, parameterCount: 1)
        var params: [Float] = [1]
        let reports = Self.run(&optimizer, &params, [[0.5]])
        // Step 1: m = 0.25, v = 0.025; bias-corrected m^ = 0.5, v^ = 0.25: the step is lr * sign(g).
        #expect(abs(params[0] - 0.95) < 1e-7, "after step 1: \(params[0])")
        #expect(reports[0].learningRate == 0.05)
        // Step 2, g = -1: m = -0.375, v = 0.1225; m^ = -0.5, v^ = 0.1225 / 0.19; p += 0.1 * 0.5 / 0.802955.
        _ = Self.run(&optimizer, &params, [[-1]])
        #expect(abs(params[0] - 1.0122704) < 1e-6, "after step 2: \(params[0])")
        // Step 3, g = 2: m = 0.8125, v = 0.51025; m^ = 0.928571, v^ = 1.882841; p -= 0.1 * 0.676714.
        _ = Self.run(&optimizer, &params, [[2]])
        #expect(abs(params[0] - 0.944599) < 2e-6, "after step 3: \(params[0])")
        #expect(optimizer.state.step == 3)
        #expect(abs(optimizer.state.m[0] - 0.8125) < 1e-7 && abs(optimizer.state.v[0] - 0.51025) < 1e-6)
    }

    /// Textbook Adam in Double (m^ = m / (1 - b1^t), v^ = v / (1 - b2^t)) over many parameters.
    @Test func adamMatchesTextbookFormulasInDouble() {
        let count = 17, steps = 6
        var random = TestRandom(seed: 42)
        var params = (0..<count).map { _ in random.uniform(-1, 1) }
        let gradients = (0..<steps).map { _ in (0..<count).map { _ in random.uniform(-2, 2) } }
        var expected = params.map { Double($0) }
        var m = [Double](repeating: 0, count: count), v = m
        let schedule = LearningRateSchedule(peak: 0.01, warmupSteps: 3)
        for (s, g) in gradients.enumerated() {
            let t = Double(s + 1)
            let lr = Double(schedule.rate(update: s + 1))
            for i in 0..<count {
                m[i] = 0.5 * m[i] + 0.5 * Double(g[i])
                v[i] = 0.9 * v[i] + 0.1 * Double(g[i]) * Double(g[i])
                let mHat = m[i] / (1 - pow(0.5, t)), vHat = v[i] / (1 - pow(0.9, t))
                expected[i] -= lr * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        var optimizer = Optimizer(settings: OptimizerSettings(schedule: schedule), parameterCount: count)
        _ = Self.run(&optimizer, &params, gradients)
        let maxDiff = zip(params, expected).map { abs(Double($0) - $1) }.max()!
        #expect(maxDiff < 1e-6, "max diff \(maxDiff); \(Array(params.prefix(3))) vs \(Array(expected.prefix(3)))")
    }

    @Test func resumingFromSavedStateIsBitIdentical() {
        var random = TestRandom(seed: 8)
        let gradients = (0..<5).map { _ in (0..<9).map { _ in random.uniform(-1, 1) } }
        let settings = OptimizerSettings(schedule: LearningRateSchedule(peak: 0.01, warmupSteps: 2))
        var straight = Optimizer(settings: settings, parameterCount: 9)
        var a = [Float](repeating: 0.5, count: 9)
        _ = Self.run(&straight, &a, gradients)

        var first = Optimizer(settings: settings, parameterCount: 9)
        var b = [Float](repeating: 0.5, count: 9)
        _ = Self.run(&first, &b, Array(gradients[..<2]))
        var resumed = Optimizer(settings: settings, parameterCount: 9, state: first.state)
        _ = Self.run(&resumed, &b, Array(gradients[2...]))
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(resumed.state == straight.state)
    }

    @Test func sgdIsPlainGradientDescent() {
        let settings = OptimizerSettings(kind: .sgd, schedule: LearningRateSchedule(peak: 0.1))
        var optimizer = Optimizer(settings: settings, parameterCount: 2)
        var params: [Float] = [1, 2]
        _ = Self.run(&optimizer, &params, [[0.5, -1], [0.5, -1]])
        #expect(abs(params[0] - 0.9) < 1e-7 && abs(params[1] - 2.2) < 1e-6, "\(params)")
        #expect(optimizer.state.m.isEmpty && optimizer.state.step == 2)
    }

    @Test func clippingScalesByTheGlobalNorm() {
        let settings = OptimizerSettings(kind: .sgd, schedule: LearningRateSchedule(peak: 1), maxGradientNorm: 1)
        var optimizer = Optimizer(settings: settings, parameterCount: 2)
        var params: [Float] = [0, 0]
        let clipped = Self.run(&optimizer, &params, [[3, 4]])[0]
        #expect(clipped.gradientNorm == 5)
        #expect(abs(clipped.clipScale - 0.2) < 1e-6)
        #expect(abs(params[0] + 0.6) < 1e-6 && abs(params[1] + 0.8) < 1e-6, "\(params)")
        // Below the limit nothing changes.
        let unclipped = Self.run(&optimizer, &params, [[0.3, 0.4]])[0]
        #expect(unclipped.clipScale == 1)
        #expect(abs(params[0] + 0.9) < 1e-6 && abs(params[1] + 1.2) < 1e-6, "\(params)")
    }

    @Test func nonFiniteGradientsChangeNothing() {
        var optimizer = Optimizer(settings: OptimizerSettings(), parameterCount: 3)
        var params: [Float] = [1, 2, 3]
        _ = Self.run(&optimizer, &params, [[0.1, 0.2, 0.3]])
        let before = (params, optimizer.state)
        let report = Self.run(&optimizer, &params, [[0.1, .nan, 0.3]])[0]
        #expect(!report.applied && report.update == 2)
        #expect(params == before.0 && optimizer.state == before.1)
        #expect(Self.run(&optimizer, &params, [[.infinity, 0, 0]])[0].applied == false)
        #expect(Self.run(&optimizer, &params, [[0.1, 0.2, 0.3]])[0].applied)
        #expect(optimizer.state.step == 2)
    }

    @Test func scheduleWarmsUpThenHoldsOrDecays() {
        let constant = LearningRateSchedule(peak: 1, warmupSteps: 4)
        #expect((1...6).map { constant.rate(update: $0) } == [0.25, 0.5, 0.75, 1, 1, 1])
        let cosine = LearningRateSchedule(peak: 1, warmupSteps: 2, decay: .cosine(totalSteps: 6, finalRate: 0.1))
        #expect(cosine.rate(update: 2) == 1)
        #expect(abs(cosine.rate(update: 4) - 0.55) < 1e-6)   // half way: (1 + 0.1) / 2
        #expect(abs(cosine.rate(update: 6) - 0.1) < 1e-6)
        #expect(abs(cosine.rate(update: 60) - 0.1) < 1e-6)
        #expect(LearningRateSchedule().rate(update: 1) == 4e-5)
    }
}
