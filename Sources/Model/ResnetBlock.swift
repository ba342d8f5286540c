/// ResnetBlock(cin, cout): out = shortcut(x) + conv2(swish(norm2(conv1(swish(norm1(x)))))).
///
/// Legend: P = H*W positions, Ci/Co = channels in/out; x [B, P, Ci], out [B, P, Co].
/// shortcut is the 1x1 `nin_shortcut` when Ci != Co, else the identity. Dropout is 0 (docs/model.md).
/// conv2 sums straight into the output buffer the shortcut already filled, so the residual costs
/// no extra pass.
final class ResnetBlock: ChainLayer {
    let height: Int
    let width: Int
    let inChannels: Int
    let outChannels: Int
    private let norm1: GroupNormLayer
    private let conv1: ConvLayer
    private let norm2: GroupNormLayer
    private let conv2: ConvLayer
    private let shortcut: ConvLayer?
    private let output: FloatStorage
    private let workspace: Workspace

    init(_ prefix: String, layout: ParameterLayout, config: ModelConfig, height: Int, width: Int,
         inChannels: Int, outChannels: Int, maxBatch: Int, workspace: Workspace) {
        self.height = height
        self.width = width
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.workspace = workspace
        let positions = height * width
        norm1 = GroupNormLayer("\(prefix).norm1", layout: layout, config: config, positions: positions,
                               channels: inChannels, swish: true, maxBatch: maxBatch, workspace: workspace)
        conv1 = ConvLayer("\(prefix).conv1", layout: layout,
                          geometry: .same3x3(batch: 1, height: height, width: width, inChannels: inChannels, outChannels: outChannels),
                          maxBatch: maxBatch, workspace: workspace)
        norm2 = GroupNormLayer("\(prefix).norm2", layout: layout, config: config, positions: positions,
                               channels: outChannels, swish: true, maxBatch: maxBatch, workspace: workspace)
        conv2 = ConvLayer("\(prefix).conv2", layout: layout,
                          geometry: .same3x3(batch: 1, height: height, width: width, inChannels: outChannels, outChannels: outChannels),
                          maxBatch: nil, workspace: workspace)
        shortcut = inChannels == outChannels ? nil : ConvLayer(
            "\(prefix).nin_shortcut", layout: layout,
            geometry: .pointwise(batch: 1, height: height, width: width, inChannels: inChannels, outChannels: outChannels),
            maxBatch: nil, workspace: workspace)
        output = FloatStorage(count: maxBatch * positions * outChannels)
    }

    var forwardFlopsPerImage: Double {
        conv1.forwardFlopsPerImage + conv2.forwardFlopsPerImage + (shortcut?.forwardFlopsPerImage ?? 0)
    }
    var inputSize: Int { height * width * inChannels }
    var outputSize: Int { height * width * outChannels }

    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float> {
        precondition(batch * outputSize <= output.count)
        let a1 = norm1.forward(input, batch: batch, parameters: parameters)
        let c1 = conv1.forward(a1, batch: batch, parameters: parameters)
        let a2 = norm2.forward(c1, batch: batch, parameters: parameters)
        if let shortcut {
            shortcut.run(into: output.pointer, input, batch: batch, parameters: parameters, accumulate: false)
        } else {
            workspace.pool.copy(input, to: output.pointer, count: batch * outputSize)
        }
        conv2.run(into: output.pointer, a2, batch: batch, parameters: parameters, accumulate: true)
        return UnsafePointer(output.pointer)
    }

    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        guard let dInput else { preconditionFailure("ResnetBlock always has an input gradient") }
        // The shortcut's gradient comes first, written or added as asked; norm1's then adds.
        if let shortcut {
            shortcut.backward(dOutput: dOutput, dInput: dInput, batch: batch, parameters: parameters, gradients: gradients,
                              accumulateInput: accumulateInput)
        } else if accumulateInput {
            workspace.pool.add(dOutput, to: dInput, count: batch * outputSize)
        } else {
            workspace.pool.copy(dOutput, to: dInput, count: batch * outputSize)
        }
        // Two scratch buffers alternate: each gradient dies once the layer below has consumed it.
        // Each is written whole by the layer that produces it, so none is zeroed first.
        let dA2 = workspace.floats(.blockGradientA, batch * outputSize)
        conv2.backward(dOutput: dOutput, dInput: dA2, batch: batch, parameters: parameters, gradients: gradients,
                       accumulateInput: false)
        let dC1 = workspace.floats(.blockGradientB, batch * outputSize)
        norm2.backward(dOutput: dA2, dInput: dC1, batch: batch, parameters: parameters, gradients: gradients,
                       accumulateInput: false)
        let dA1 = workspace.floats(.blockGradientA, batch * inputSize)
        conv1.backward(dOutput: dC1, dInput: dA1, batch: batch, parameters: parameters, gradients: gradients,
                       accumulateInput: false)
        norm1.backward(dOutput: dA1, dInput: dInput, batch: batch, parameters: parameters, gradients: gradients)
    }
}
