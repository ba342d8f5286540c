import Testing
@testable import Model

@Suite struct InitializationTests {
    static func initialized(_ config: ModelConfig, seed: UInt64) -> [Float] {
        let layout = ParameterLayout(config: config)
        var params = [Float](repeating: .nan, count: layout.totalCount)
        params.withUnsafeMutableBufferPointer { initializeParameters($0, layout: layout, config: config, seed: seed) }
        return params
    }

    @Test func splitMixMatchesItsPublishedFirstOutput() {
        // SplitMix64 seeded with 0 first returns 0xE220A8397B1DCDAF; mix(0) is that output.
        #expect(CounterRandom.mix(0) == 0xE220_A839_7B1D_CDAF)
        let random = CounterRandom(seed: 7)
        #expect(random.bits(stream: 3, counter: 9) == random.bits(stream: 3, counter: 9))
        #expect(random.bits(stream: 3, counter: 9) != random.bits(stream: 3, counter: 10))
        #expect(random.bits(stream: 3, counter: 9) != random.bits(stream: 4, counter: 9))
    }

    @Test func sameSeedIsBitIdenticalAndAnotherSeedDiffers() {
        let a = Self.initialized(.tiny, seed: 1234)
        let b = Self.initialized(.tiny, seed: 1234)
        let c = Self.initialized(.tiny, seed: 1235)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(a.allSatisfy { $0.isFinite }, "every element is written")
        let layout = ParameterLayout(config: .tiny)
        let weight = layout.entry("encoder.conv_in.weight")
        let differing = weight.range.filter { a[$0] != c[$0] }.count
        #expect(differing > weight.count * 9 / 10, "only \(differing) of \(weight.count) values changed with the seed")
        // The DCT part does not depend on the seed.
        #expect(layout.entry("Dict").range.allSatisfy { a[$0] == c[$0] })
    }

    @Test func everyTensorFollowsItsRule() {
        let config = ModelConfig.tiny
        let layout = ParameterLayout(config: config)
        let params = Self.initialized(config, seed: 99)
        let (dictionary, c) = initialDictionary(config: config)
        for entry in layout.entries {
            let values = Array(params[entry.range])
            switch ParameterKind(entry) {
            case .dictionary: #expect(values == dictionary)
            case .dictionaryStep: #expect(values == [c])
            case .normWeight: #expect(values.allSatisfy { $0 == 1 }, "\(entry.name)")
            case .normBias, .convolutionBias: #expect(values.allSatisfy { $0 == 0 }, "\(entry.name)")
            case .convolutionWeight:
                let bound = Float(xavierUniformBound(shape: entry.shape))
                let largest = values.map { abs($0) }.max()!
                #expect(largest <= bound, "\(entry.name): |w| up to \(largest), bound \(bound)")
                #expect(largest > bound * 0.5, "\(entry.name): values fill the range")
            }
        }
        #expect(layout.entries.filter { ParameterKind($0) == .normWeight }.count > 10)
        // The eigenvalues of D D^T average K / C and sum to K (unit columns), so c0 lies between.
        #expect(c > Float(config.atoms / config.latentChannels) && c < Float(config.atoms), "c0 = \(c)")
    }

    @Test func xavierVarianceForABigTensor() {
        let config = ModelConfig.small
        let layout = ParameterLayout(config: config)
        let params = Self.initialized(config, seed: 5)
        let entry = layout.entries.filter { ParameterKind($0) == .convolutionWeight }.max { $0.count < $1.count }!
        let values = params[entry.range].map { Double($0) }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        let bound = xavierUniformBound(shape: entry.shape)
        let expected = bound * bound / 3   // variance of U(-b, b) = 2 / (fan_in + fan_out)
        #expect(entry.count > 100_000, "\(entry.name) has \(entry.count) values")
        #expect(abs(variance / expected - 1) < 0.02, "\(entry.name): variance \(variance), Xavier \(expected)")
        #expect(abs(mean) < 0.01 * bound, "mean \(mean)")
    }

    @Test func xavierBoundUsesReceptiveField() {
        // [out 8, in 4, 3, 3]: fan_in 36, fan_out 72.
        #expect(xavierUniformBound(shape: [8, 4, 3, 3]) == (6.0 / 108).squareRoot())
    }
}
