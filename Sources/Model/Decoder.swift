/// The taming-transformers VQGAN decoder of docs/model.md as a chain of layers.
///
/// Legend: s = latent side, C = latent channels, L = levels, D = ch*chMult[L-1].
/// hHat [B, s, s, C] -> conv_in to D -> mid (ResnetBlock, AttnBlock, ResnetBlock) -> for levels
/// L-1 down to 0: resBlocks+1 ResnetBlocks to ch*chMult[i] (AttnBlock after each at attention
/// resolutions), then nearest x2 + 3x3 conv except at level 0 -> norm_out + swish -> conv_out ->
/// xHat [B, S, S, 3]. No tanh.
enum Decoder {
    static func build(config: ModelConfig, layout: ParameterLayout, maxBatch: Int, workspace: Workspace) -> LayerChain {
        var layers: [ChainLayer] = []
        var side = config.latentSize
        var channels = config.ch * config.chMult[config.levels - 1]
        func same3x3(_ cin: Int, _ cout: Int) -> Conv2dGeometry {
            .same3x3(batch: 1, height: side, width: side, inChannels: cin, outChannels: cout)
        }
        layers.append(ConvLayer("decoder.conv_in", layout: layout, geometry: same3x3(config.latentChannels, channels),
                                maxBatch: maxBatch, workspace: workspace))
        layers += Encoder.midLayers("decoder", config: config, layout: layout, side: side, channels: channels,
                                    maxBatch: maxBatch, workspace: workspace)
        for level in (0..<config.levels).reversed() {
            let out = config.ch * config.chMult[level]
            for block in 0...config.resBlocks {
                layers.append(ResnetBlock("decoder.up.\(level).block.\(block)", layout: layout, config: config,
                                          height: side, width: side, inChannels: channels, outChannels: out,
                                          maxBatch: maxBatch, workspace: workspace))
                channels = out
                if config.attnResolutions.contains(side) {
                    layers.append(AttnBlock("decoder.up.\(level).attn.\(block)", layout: layout, config: config,
                                            height: side, width: side, channels: channels, maxBatch: maxBatch, workspace: workspace))
                }
            }
            if level != 0 {
                layers.append(UpsampleLayer(height: side, width: side, channels: channels, maxBatch: maxBatch))
                side *= 2
                layers.append(ConvLayer("decoder.up.\(level).upsample.conv", layout: layout, geometry: same3x3(channels, channels),
                                        maxBatch: maxBatch, workspace: workspace))
            }
        }
        layers.append(GroupNormLayer("decoder.norm_out", layout: layout, config: config, positions: side * side,
                                     channels: channels, swish: true, maxBatch: maxBatch, workspace: workspace))
        layers.append(ConvLayer("decoder.conv_out", layout: layout, geometry: same3x3(channels, 3),
                                maxBatch: maxBatch, workspace: workspace))
        return LayerChain(layers: layers, workspace: workspace)
    }
}
