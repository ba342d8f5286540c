/// One named tensor inside the flat parameter (and gradient) buffer.
public struct ParameterEntry: Sendable, Equatable, Hashable {
    /// The checkpoint name (docs/model.md, "Checkpoint tensor names"), e.g. `encoder.down.0.block.0.conv1.weight`.
    public var name: String
    /// PyTorch shape: convolutions [out, in, kh, kw], GroupNorm [C], `Dict` [C, K], `c` [1].
    public var shape: [Int]
    /// Offset in floats from the start of the flat buffer.
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The named layout of the flat parameter buffer; the gradient and optimizer buffers share it.
///
/// Order follows the PyTorch module registration order of the reference model (encoder, the
/// LISTA dictionary `Dict` and step `c`, decoder), so the flat buffer reads like a state_dict.
public struct ParameterLayout: Sendable, Equatable {
    public let entries: [ParameterEntry]
    public let totalCount: Int
    private let indexByName: [String: Int]

    public init(config: ModelConfig) {
        var builder = LayoutBuilder()
        builder.addEncoder(config)
        builder.add("Dict", [config.latentChannels, config.atoms])
        builder.add("c", [1])
        builder.addDecoder(config)
        self.init(entries: builder.entries)
    }

    public init(entries: [ParameterEntry]) {
        self.entries = entries
        self.totalCount = entries.last.map { $0.offset + $0.count } ?? 0
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.name] = i }
        self.indexByName = index
    }

    public subscript(name: String) -> ParameterEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// The entry with this name; traps with the name if the layout has none (a programming error).
    public func entry(_ name: String) -> ParameterEntry {
        guard let entry = self[name] else { preconditionFailure("ParameterLayout has no tensor named '\(name)'") }
        return entry
    }
}

/// Appends entries in registration order, giving each the next offset.
private struct LayoutBuilder {
    var entries: [ParameterEntry] = []
    var next = 0

    mutating func add(_ name: String, _ shape: [Int]) {
        let entry = ParameterEntry(name: name, shape: shape, offset: next)
        entries.append(entry)
        next += entry.count
    }

    mutating func conv(_ prefix: String, _ cin: Int, _ cout: Int, kernel: Int) {
        add("\(prefix).weight", [cout, cin, kernel, kernel])
        add("\(prefix).bias", [cout])
    }

    mutating func norm(_ prefix: String, _ channels: Int) {
        add("\(prefix).weight", [channels])
        add("\(prefix).bias", [channels])
    }

    mutating func resnetBlock(_ prefix: String, _ cin: Int, _ cout: Int) {
        norm("\(prefix).norm1", cin)
        conv("\(prefix).conv1", cin, cout, kernel: 3)
        norm("\(prefix).norm2", cout)
        conv("\(prefix).conv2", cout, cout, kernel: 3)
        if cin != cout { conv("\(prefix).nin_shortcut", cin, cout, kernel: 1) }
    }

    mutating func attnBlock(_ prefix: String, _ channels: Int) {
        norm("\(prefix).norm", channels)
        for part in ["q", "k", "v", "proj_out"] { conv("\(prefix).\(part)", channels, channels, kernel: 1) }
    }

    mutating func mid(_ prefix: String, _ channels: Int) {
        resnetBlock("\(prefix).mid.block_1", channels, channels)
        attnBlock("\(prefix).mid.attn_1", channels)
        resnetBlock("\(prefix).mid.block_2", channels, channels)
    }

    mutating func addEncoder(_ config: ModelConfig) {
        conv("encoder.conv_in", 3, config.ch, kernel: 3)
        var resolution = config.imageSize
        var channels = config.ch
        for level in 0..<config.levels {
            let out = config.ch * config.chMult[level]
            for block in 0..<config.resBlocks {
                resnetBlock("encoder.down.\(level).block.\(block)", channels, out)
                channels = out
                if config.attnResolutions.contains(resolution) {
                    attnBlock("encoder.down.\(level).attn.\(block)", channels)
                }
            }
            if level != config.levels - 1 {
                conv("encoder.down.\(level).downsample.conv", channels, channels, kernel: 3)
                resolution /= 2
            }
        }
        mid("encoder", channels)
        norm("encoder.norm_out", channels)
        conv("encoder.conv_out", channels, config.latentChannels, kernel: 3)
    }

    /// Decoder levels are registered 0, 1, ... (ModuleList order) although they run last to first.
    mutating func addDecoder(_ config: ModelConfig) {
        let deepest = config.ch * config.chMult[config.levels - 1]
        conv("decoder.conv_in", config.latentChannels, deepest, kernel: 3)
        mid("decoder", deepest)
        // Input channels of each level follow the run order (last level first).
        var inputChannels = [Int](repeating: 0, count: config.levels)
        var channels = deepest
        for level in (0..<config.levels).reversed() {
            inputChannels[level] = channels
            channels = config.ch * config.chMult[level]
        }
        for level in 0..<config.levels {
            let out = config.ch * config.chMult[level]
            let resolution = config.latentSize << (config.levels - 1 - level)
            var c = inputChannels[level]
            for block in 0...config.resBlocks {
                resnetBlock("decoder.up.\(level).block.\(block)", c, out)
                c = out
                if config.attnResolutions.contains(resolution) {
                    attnBlock("decoder.up.\(level).attn.\(block)", c)
                }
            }
            if level != 0 { conv("decoder.up.\(level).upsample.conv", c, c, kernel: 3) }
        }
        norm("decoder.norm_out", config.ch * config.chMult[0])
        conv("decoder.conv_out", config.ch * config.chMult[0], 3, kernel: 3)
    }
}
