// Initial parameters of SC-VAE (docs/model.md, "Other initial values"): Xavier-uniform convolution weights, zero
// biases, GroupNorm weight 1 and bias 0, the DCT dictionary and c = its squared spectral norm.
//
// Shapes are the PyTorch ones of ParameterLayout: convolution weights [out, in, kh, kw],
// GroupNorm [channels], `Dict` [C, K], `c` [1].

/// The initial `Dict` [C, K] (row-major) and `c` of a configuration.
public func initialDictionary(config: ModelConfig) -> (dictionary: [Float], c: Float) {
    let d = DCT.dictionary(channels: config.latentChannels, atoms: config.atoms, atomsPerAxis: config.dctAtomsPerAxis)
    let c = DCT.squaredSpectralNorm(d, rows: config.latentChannels, columns: config.atoms)
    return (d.map { Float($0) }, Float(c))
}

/// Fills every tensor of `layout` in `params` with its initial value.
///
/// Deterministic and platform independent: element e of the tensor named N takes
/// `CounterRandom(seed).unitDouble(stream: stream(named: N), counter: e)`, so the result depends only
/// on the seed, never on threads, order or the other tensors of the layout.
public func initializeParameters(_ params: UnsafeMutableBufferPointer<Float>, layout: ParameterLayout,
                                 config: ModelConfig, seed: UInt64) {
    precondition(params.count >= layout.totalCount,
                 "initializeParameters: buffer of \(params.count) floats, layout needs \(layout.totalCount)")
    let random = CounterRandom(seed: seed)
    let base = params.baseAddress!
    var dictionary: (dictionary: [Float], c: Float)?
    func initial() -> (dictionary: [Float], c: Float) {
        if let dictionary { return dictionary }
        let made = initialDictionary(config: config)
        dictionary = made
        return made
    }

    for entry in layout.entries {
        let values = UnsafeMutableBufferPointer(start: base + entry.offset, count: entry.count)
        switch ParameterKind(entry) {
        case .dictionary:
            let d = initial().dictionary
            precondition(d.count == entry.count, "Dict has \(entry.count) values, the DCT made \(d.count)")
            _ = values.update(fromContentsOf: d)
        case .dictionaryStep:
            values.update(repeating: initial().c)
        case .normWeight:
            values.update(repeating: 1)
        case .normBias, .convolutionBias:
            values.update(repeating: 0)
        case .convolutionWeight:
            let bound = xavierUniformBound(shape: entry.shape)
            let stream = CounterRandom.stream(named: entry.name)
            for e in 0..<entry.count {
                let u = random.unitDouble(stream: stream, counter: UInt64(e))
                values[e] = Float((2 * u - 1) * bound)
            }
        }
    }
}

/// sqrt(6 / (fan_in + fan_out)) for a convolution weight [out, in, kh, kw]:
/// fan_in = in * kh * kw, fan_out = out * kh * kw (as torch.nn.init.xavier_uniform_).
public func xavierUniformBound(shape: [Int]) -> Double {
    precondition(shape.count == 4, "Xavier init expects a convolution weight [out, in, kh, kw], got \(shape)")
    let receptive = shape[2] * shape[3]
    let fanIn = shape[1] * receptive, fanOut = shape[0] * receptive
    return (6 / Double(fanIn + fanOut)).squareRoot()
}

/// What a tensor of the layout is, read from its name and shape.
enum ParameterKind: Equatable {
    case dictionary, dictionaryStep, normWeight, normBias, convolutionWeight, convolutionBias

    init(_ entry: ParameterEntry) {
        if entry.name == "Dict" { self = .dictionary; return }
        if entry.name == "c" { self = .dictionaryStep; return }
        let parts = entry.name.split(separator: ".")
        // GroupNorm modules are named norm, norm1, norm2, norm_out.
        let isNorm = parts.count >= 2 && parts[parts.count - 2].hasPrefix("norm")
        switch (parts.last, isNorm) {
        case ("weight", true): self = .normWeight
        case ("bias", true): self = .normBias
        case ("weight", false) where entry.shape.count == 4: self = .convolutionWeight
        case ("bias", false): self = .convolutionBias
        default: preconditionFailure("no initialisation rule for tensor '\(entry.name)' of shape \(entry.shape)")
        }
    }
}
