import Testing
@testable import Model

/// A small LISTA problem: random h, a dictionary with unit columns, c a little above the
/// largest eigenvalue of D^T D (so S has eigenvalues in [0, 1], as after the DCT init), and beta
/// set so that theta sits among the typical |y| (some codes zero, some not).
struct LISTAProblem {
    var config: ModelConfig
    var positions: Int
    var h: [Float]          // [P, C]
    var dictionary: [Float] // [C, K]
    var c: Float
    var dHHat: [Float]      // [P, C]

    init(channels: Int, atoms: Int, iterations: Int, positions: Int, seed: UInt64, theta: Float = 0.3) {
        var random = TestRandom(seed: seed)
        config = ModelConfig(name: "test", imageSize: 8, ch: 4, chMult: [1], resBlocks: 1, attnResolutions: [],
                             latentChannels: channels, atoms: atoms, istaIterations: iterations, dctAtomsPerAxis: 2)
        self.positions = positions
        h = (0..<(positions * channels)).map { _ in random.uniform(-1, 1) }
        dHHat = (0..<(positions * channels)).map { _ in random.uniform(-1, 1) }
        var d = (0..<(channels * atoms)).map { _ in Double(random.uniform(-1, 1)) }
        for k in 0..<atoms {
            let norm = (0..<channels).map { d[$0 * atoms + k] * d[$0 * atoms + k] }.reduce(0, +).squareRoot()
            for i in 0..<channels { d[i * atoms + k] /= norm }
        }
        dictionary = d.map { Float($0) }
        c = Float(1.05 * largestGramEigenvalue(dictionary, channels: channels, atoms: atoms))
        config.beta = theta * c
    }

    var reference: LISTAReference { LISTAReference(config: config) }

    /// The first seed from `seed` on whose problem every soft-threshold input is at least `margin` from theta.
    static func withMargin(_ margin: Double, channels: Int, atoms: Int, iterations: Int, positions: Int,
                           seed: UInt64) -> LISTAProblem {
        for attempt in 0..<200 {
            let problem = LISTAProblem(channels: channels, atoms: atoms, iterations: iterations,
                                       positions: positions, seed: seed &+ UInt64(attempt) &* 7919)
            let forward = problem.reference.forward(h: problem.h, dictionary: problem.dictionary,
                                                    c: problem.c, positions: positions)
            let zeros = forward.codes.filter { $0 == 0 }.count
            if forward.thresholdMargin >= margin && zeros > 0 && zeros < forward.codes.count { return problem }
        }
        fatalError("no LISTA problem with threshold margin \(margin) in 200 seeds")
    }

    struct FastResult {
        var hHat: [Float], codes: [Float], zeros: Int
        var dH: [Float], dDictionary: [Float], dC: Float
    }

    /// Runs the BLAS LISTA; the gradient buffers start at `initialGradient` to check they accumulate.
    func runFast(initialGradient: Float = 0) -> FastResult {
        let C = config.latentChannels, K = config.atoms, P = positions
        let lista = LISTA(config: config, maxPositions: P + 3)
        var result = FastResult(hHat: [Float](repeating: 0, count: P * C), codes: [Float](repeating: 0, count: P * K),
                                zeros: 0, dH: [Float](repeating: initialGradient, count: P * C),
                                dDictionary: [Float](repeating: initialGradient, count: C * K), dC: initialGradient)
        result.zeros = lista.forward(h: h, dictionary: dictionary, c: c, positions: P,
                                     hHat: &result.hHat, codes: &result.codes)
        lista.backward(dHHat: dHHat, h: h, dictionary: dictionary, c: c, positions: P,
                       dH: &result.dH, dDictionary: &result.dDictionary, dC: &result.dC)
        return result
    }

    /// L = <dHHat, hHat> from the fast forward, summed in Double.
    func loss(h: [Float], dictionary: [Float], c: Float) -> Double {
        let C = config.latentChannels, K = config.atoms, P = positions
        let lista = LISTA(config: config, maxPositions: P)
        var hHat = [Float](repeating: 0, count: P * C)
        var codes = [Float](repeating: 0, count: P * K)
        _ = lista.forward(h: h, dictionary: dictionary, c: c, positions: P, hHat: &hHat, codes: &codes)
        return zip(dHHat, hHat).map { Double($0) * Double($1) }.reduce(0, +)
    }
}

/// Largest eigenvalue of D^T D by power iteration on D D^T (Double), for building test problems.
func largestGramEigenvalue(_ dictionary: [Float], channels: Int, atoms: Int) -> Double {
    var v = (0..<channels).map { Double($0 % 7) + 1 }
    var lambda: Double = 0
    for _ in 0..<2000 {
        var w = [Double](repeating: 0, count: channels)
        for k in 0..<atoms {
            var dot: Double = 0
            for i in 0..<channels { dot += Double(dictionary[i * atoms + k]) * v[i] }
            for i in 0..<channels { w[i] += Double(dictionary[i * atoms + k]) * dot }
        }
        let norm = w.map { $0 * $0 }.reduce(0, +).squareRoot()
        lambda = norm / v.map { $0 * $0 }.reduce(0, +).squareRoot()
        v = w.map { $0 / norm }
    }
    return lambda
}

/// Max |a - b| and the largest |b|, with the first values of each for failure messages.
func compare(_ fast: [Float], _ reference: [Double]) -> (maxDiff: Double, scale: Double, message: String) {
    precondition(fast.count == reference.count, "compare: \(fast.count) vs \(reference.count) values")
    let maxDiff = zip(fast, reference).map { abs(Double($0) - $1) }.max() ?? 0
    let scale = reference.map { abs($0) }.max() ?? 0
    return (maxDiff, scale, "max diff \(maxDiff) (scale \(scale)); fast \(Array(fast.prefix(4))) vs reference \(Array(reference.prefix(4)))")
}

@Suite struct LISTATests {
    struct Shape: Sendable, CustomStringConvertible {
        var channels: Int, atoms: Int, iterations: Int, positions: Int
        var description: String { "C=\(channels) K=\(atoms) T=\(iterations) P=\(positions)" }
    }

    @Test(arguments: [Shape(channels: 64, atoms: 128, iterations: 5, positions: 1),
                      Shape(channels: 64, atoms: 128, iterations: 5, positions: 7),
                      Shape(channels: 16, atoms: 32, iterations: 3, positions: 33),
                      Shape(channels: 8, atoms: 20, iterations: 0, positions: 5),
                      Shape(channels: 64, atoms: 128, iterations: 16, positions: 2)])
    func fastMatchesNaiveReference(shape: Shape) {
        let problem = LISTAProblem.withMargin(2e-5, channels: shape.channels, atoms: shape.atoms,
                                              iterations: shape.iterations, positions: shape.positions, seed: 11)
        let reference = problem.reference
        let expected = reference.forward(h: problem.h, dictionary: problem.dictionary, c: problem.c,
                                         positions: problem.positions)
        let gradients = reference.backward(dHHat: problem.dHHat, h: problem.h, dictionary: problem.dictionary,
                                           c: problem.c, positions: problem.positions)
        // Gradient buffers start at 0.5: backward must add to them.
        let fast = problem.runFast(initialGradient: 0.5)

        let tolerance = 1e-4
        for (name, values, reference) in [
            ("hHat", fast.hHat, expected.hHat), ("codes", fast.codes, expected.codes),
            ("dH", fast.dH.map { $0 - 0.5 }, gradients.dH),
            ("dDictionary", fast.dDictionary.map { $0 - 0.5 }, gradients.dDictionary),
            ("dC", [fast.dC - 0.5], [gradients.dC]),
        ] {
            let result = compare(values, reference)
            #expect(result.maxDiff <= tolerance * max(1, result.scale), "\(name) \(shape): \(result.message)")
        }
        #expect(fast.zeros == expected.codes.filter { $0 == 0 }.count)
        #expect(fast.zeros == fast.codes.filter { $0 == 0 }.count)
    }

    /// The dictionary and c the model starts from (DCT, squared spectral norm), beta = 1 as in training.
    @Test func fastMatchesNaiveReferenceWithTheInitialDictionary() {
        let config = ModelConfig.tiny
        let (dictionary, c) = initialDictionary(config: config)
        var problem = LISTAProblem(channels: 64, atoms: 128, iterations: config.istaIterations, positions: 9, seed: 21)
        problem.config = config
        problem.dictionary = dictionary
        problem.c = c
        problem.h = problem.h.map { $0 * 2 }
        let expected = problem.reference.forward(h: problem.h, dictionary: dictionary, c: c, positions: 9)
        let gradients = problem.reference.backward(dHHat: problem.dHHat, h: problem.h, dictionary: dictionary,
                                                   c: c, positions: 9)
        let fast = problem.runFast()
        #expect(expected.thresholdMargin > 1e-5, "margin \(expected.thresholdMargin): pick another seed")
        let sparsity = Double(fast.zeros) / Double(fast.codes.count)
        #expect(sparsity > 0.05 && sparsity < 0.98, "sparsity \(sparsity)")
        for (name, values, reference) in [
            ("hHat", fast.hHat, expected.hHat), ("dH", fast.dH, gradients.dH),
            ("dDictionary", fast.dDictionary, gradients.dDictionary), ("dC", [fast.dC], [gradients.dC]),
        ] {
            let result = compare(values, reference)
            #expect(result.maxDiff <= 1e-4 * max(1, result.scale), "\(name): \(result.message)")
        }
    }

    @Test func backwardMatchesFiniteDifferences() {
        let problem = LISTAProblem.withMargin(0.02, channels: 4, atoms: 6, iterations: 3, positions: 3, seed: 5)
        let analytic = problem.runFast()
        let step: Float = 1e-3

        /// Central differences: `loss(i, delta)` moves input i by about delta and returns the loss and
        /// the exact float step taken.
        func check(_ name: String, _ analytic: [Float], loss: (Int, Float) -> (value: Double, moved: Double)) {
            var maxDiff = 0.0, worst = 0
            var numeric = [Double]()
            for i in analytic.indices {
                let plus = loss(i, step), minus = loss(i, -step)
                let fd = (plus.value - minus.value) / (plus.moved - minus.moved)
                numeric.append(fd)
                let diff = abs(fd - Double(analytic[i]))
                if diff > maxDiff { maxDiff = diff; worst = i }
            }
            let scale = numeric.map { abs($0) }.max() ?? 0
            #expect(maxDiff <= 2e-3 + 1e-2 * scale,
                    "\(name): max |fd - analytic| = \(maxDiff) at \(worst); fd \(Array(numeric.prefix(4))) vs analytic \(Array(analytic.prefix(4)))")
        }

        check("dH", analytic.dH) { i, delta in
            var moved = problem.h
            moved[i] += delta
            return (problem.loss(h: moved, dictionary: problem.dictionary, c: problem.c), Double(moved[i] - problem.h[i]))
        }
        check("dDictionary", analytic.dDictionary) { i, delta in
            var moved = problem.dictionary
            moved[i] += delta
            return (problem.loss(h: problem.h, dictionary: moved, c: problem.c),
                    Double(moved[i] - problem.dictionary[i]))
        }
        check("dC", [analytic.dC]) { _, delta in
            let moved = problem.c + delta * problem.c
            return (problem.loss(h: problem.h, dictionary: problem.dictionary, c: moved), Double(moved - problem.c))
        }
    }

    @Test func gradientOfCIsZeroBelowTheFloor() {
        var problem = LISTAProblem(channels: 8, atoms: 12, iterations: 2, positions: 4, seed: 3)
        problem.c = LISTA.cFloor / 2
        let result = problem.runFast()
        #expect(result.dC == 0)
        #expect(result.hHat.allSatisfy { $0.isFinite })
    }
}

/// SplitMix64 stream for test inputs.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * Float(next() >> 40) / Float(1 << 24)
    }
}
