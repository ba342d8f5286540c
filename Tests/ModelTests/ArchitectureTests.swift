import Testing
@testable import Model

/// The encoder and decoder chains of every configuration bind to the parameter layout with the
/// right shapes (ConvLayer and GroupNormLayer check names and shapes), and their sizes line up.
@Suite struct ArchitectureTests {
    @Test(arguments: ModelConfig.all)
    func chainsMatchTheLayout(config: ModelConfig) {
        let layout = ParameterLayout(config: config)
        let workspace = Workspace()
        // maxBatch 0 allocates nothing large: only the wiring is under test here.
        let encoder = Encoder.build(config: config, layout: layout, maxBatch: 0, workspace: workspace)
        let decoder = Decoder.build(config: config, layout: layout, maxBatch: 0, workspace: workspace)
        let imageFloats = 3 * config.imageSize * config.imageSize
        let latentFloats = config.latentSize * config.latentSize * config.latentChannels
        #expect(encoder.inputSize == imageFloats && encoder.outputSize == latentFloats)
        #expect(decoder.inputSize == latentFloats && decoder.outputSize == imageFloats)
        // Every parameter but the dictionary is used by exactly one layer.
        let convs = (encoder.layers + decoder.layers).flatMap(Self.parameterNames)
        let expected = layout.entries.map(\.name).filter { $0 != "Dict" && $0 != "c" }
        #expect(convs.count == expected.count, "\(config.name): \(convs.count) layer tensors vs \(expected.count) in the layout")
    }

    /// Counts the parameter tensors a chain layer binds (two per conv or norm).
    static func parameterNames(_ layer: ChainLayer) -> [String] {
        Mirror(reflecting: layer).children.flatMap { child -> [String] in
            switch child.value {
            case is ConvLayer, is GroupNormLayer: return ["weight", "bias"]
            case let optional as ConvLayer?: return optional == nil ? [] : ["weight", "bias"]
            default: return []
            }
        } + (layer is ConvLayer || layer is GroupNormLayer ? ["weight", "bias"] : [])
    }
}
