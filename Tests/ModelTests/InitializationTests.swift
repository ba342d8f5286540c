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

    /// Golden bits: any change of the generator, the name hash or the Xavier formula shows here.
    /// The convolution values were recomputed independently in Python (SplitMix64 chain, FNV-1a,
    /// Xavier), the Dict entry and c with numpy (np.kron, permuted rows, np.linalg.norm(D, 2) ** 2).
    @Test func seed1234GivesTheRecordedBits() {
        #expect(CounterRandom.stream(named: "a") == 0xAF63_DC4C_8601_EC8C)   // published FNV-1a 64 of "a"
        #expect(CounterRandom(seed: 1234).bits(stream: 5, counter: 6) == 0x16A6_BCC6_7985_E778)
        let layout = ParameterLayout(config: .tiny)
        let params = Self.initialized(.tiny, seed: 1234)
        let convIn = layout.entry("encoder.conv_in.weight").offset
        let query = layout.entry("decoder.mid.attn_1.q.weight").offset
        let dictionary = layout.entry("Dict").offset
        let recorded: [(Int, UInt32)] = [
            (convIn, 0x3DC6_02F7), (convIn + 1, 0x3C02_FC83), (convIn + 100, 0xBDB9_753B),
            (query + 7, 0x3E37_4C1B), (dictionary + 130, 0x3E39_F0F7), (layout.entry("c").offset, 0x40E8_E683),
        ]
        for (index, bits) in recorded {
            #expect(params[index].bitPattern == bits, "element \(index): \(params[index]) = 0x\(String(params[index].bitPattern, radix: 16))")
        }
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
