import Testing
@testable import Model

@Suite struct ParameterLayoutTests {
    @Test func paperConfigurationsHaveThePublishedSizes() {
        // docs/model.md: about 72M (f16) and 65M (f8) parameters.
        let f16 = ParameterLayout(config: .imagenetF16).totalCount
        let f8 = ParameterLayout(config: .imagenetF8).totalCount
        #expect((70_000_000...74_000_000).contains(f16), "imagenet-f16 has \(f16) parameters")
        #expect((63_000_000...67_000_000).contains(f8), "imagenet-f8 has \(f8) parameters")
    }

    @Test(arguments: ModelConfig.all)
    func entriesTileTheBufferWithoutGapsOrDuplicates(config: ModelConfig) {
        let layout = ParameterLayout(config: config)
        var expectedOffset = 0
        for entry in layout.entries {
            #expect(entry.offset == expectedOffset, "\(entry.name) starts at \(entry.offset), expected \(expectedOffset)")
            expectedOffset += entry.count
        }
        #expect(expectedOffset == layout.totalCount)
        #expect(Set(layout.entries.map(\.name)).count == layout.entries.count)
    }

    @Test func tinyHasTheNamesOfTheReferenceModel() {
        let layout = ParameterLayout(config: .tiny)
        #expect(layout["Dict"]?.shape == [64, 128])
        #expect(layout["c"]?.shape == [1])
        #expect(layout["encoder.conv_in.weight"]?.shape == [32, 3, 3, 3])
        // Level 1 goes from 32 to 64 channels, so its first block has a shortcut.
        #expect(layout["encoder.down.1.block.0.nin_shortcut.weight"]?.shape == [64, 32, 1, 1])
        #expect(layout["encoder.down.0.block.0.nin_shortcut.weight"] == nil)
        // Attention at resolution 8 = the last encoder level, and decoder level 2.
        #expect(layout["encoder.down.2.attn.0.q.weight"]?.shape == [64, 64, 1, 1])
        #expect(layout["encoder.down.1.attn.0.q.weight"] == nil)
        #expect(layout["decoder.up.2.attn.1.proj_out.bias"]?.shape == [64])
        #expect(layout["decoder.up.0.upsample.conv.weight"] == nil)
        #expect(layout["decoder.up.1.upsample.conv.weight"]?.shape == [64, 64, 3, 3])
        // Decoder level 0 receives 64 channels from level 1 and outputs 32.
        #expect(layout["decoder.up.0.block.0.nin_shortcut.weight"]?.shape == [32, 64, 1, 1])
        #expect(layout["decoder.conv_out.weight"]?.shape == [3, 32, 3, 3])
        #expect(layout["encoder.conv_out.weight"]?.shape == [64, 64, 3, 3])
    }
}
