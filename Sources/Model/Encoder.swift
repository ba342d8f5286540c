/// The taming-transformers VQGAN encoder of docs/model.md as a chain of layers.
///
/// Legend: S = image side, ch = base channels, C = latent channels, L = levels, f = 2^(L-1).
/// [B, S, S, 3] -> conv_in -> per level i: resBlocks ResnetBlocks to ch*chMult[i] (each followed
/// by an AttnBlock at attention resolutions), Downsample except after the last level -> mid
/// (ResnetBlock, AttnBlock, ResnetBlock) -> norm_out + swish -> conv_out -> h [B, S/f, S/f, C].
enum Encoder {
    static func build(config: ModelConfig, layout: ParameterLayout, maxBatch: Int, workspace: Workspace) -> LayerChain {
        var layers: [ChainLayer] = []
        var side = config.imageSize
        var channels = config.ch
        func same3x3(_ cin: Int, _ cout: Int) -> Conv2dGeometry {
            .same3x3(batch: 1, height: side, width: side, inChannels: cin, outChannels: cout)
        }
        layers.append(ConvLayer("encoder.conv_in", layout: layout, geometry: same3x3(3, channels),
                                maxBatch: maxBatch, workspace: workspace))
        for level in 0..<config.levels {
            let out = config.ch * config.chMult[level]
            for block in 0..<config.resBlocks {
                layers.append(ResnetBlock("encoder.down.\(level).block.\(block)", layout: layout, config: config,
                                          height: side, width: side, inChannels: channels, outChannels: out,
                                          maxBatch: maxBatch, workspace: workspace))
                channels = out
                if config.attnResolutions.contains(side) {
                    layers.append(AttnBlock("encoder.down.\(level).attn.\(block)", layout: layout, config: config,
                                            height: side, width: side, channels: channels, maxBatch: maxBatch, workspace: workspace))
                }
            }
            if level != config.levels - 1 {
                layers.append(ConvLayer("encoder.down.\(level).downsample.conv", layout: layout,
                                        geometry: .downsample(batch: 1, height: side, width: side, channels: channels),
                                        maxBatch: maxBatch, workspace: workspace))
                side /= 2
            }
        }
        layers += midLayers("encoder", config: config, layout: layout, side: side, channels: channels,
                            maxBatch: maxBatch, workspace: workspace)
        layers.append(GroupNormLayer("encoder.norm_out", layout: layout, config: config, positions: side * side,
                                     channels: channels, swish: true, maxBatch: maxBatch, workspace: workspace))
        layers.append(ConvLayer("encoder.conv_out", layout: layout, geometry: same3x3(channels, config.latentChannels),
                                maxBatch: maxBatch, workspace: workspace))
        return LayerChain(layers: layers, workspace: workspace)
    }

    /// mid.block_1, mid.attn_1, mid.block_2 at the deepest resolution (shared with the decoder).
    static func midLayers(_ prefix: String, config: ModelConfig, layout: ParameterLayout, side: Int, channels: Int,
                          maxBatch: Int, workspace: Workspace) -> [ChainLayer] {
        [
            ResnetBlock("\(prefix).mid.block_1", layout: layout, config: config, height: side, width: side,
                        inChannels: channels, outChannels: channels, maxBatch: maxBatch, workspace: workspace),
            AttnBlock("\(prefix).mid.attn_1", layout: layout, config: config, height: side, width: side,
                      channels: channels, maxBatch: maxBatch, workspace: workspace),
            ResnetBlock("\(prefix).mid.block_2", layout: layout, config: config, height: side, width: side,
                        inChannels: channels, outChannels: channels, maxBatch: maxBatch, workspace: workspace),
        ]
    }
}
