/// A named convolution of the model (conv_in, conv1, q, downsample.conv, ...).
///
/// Legend: H x W = input map, OH x OW = output map, Ci/Co = channels; activations NHWC.
/// Weight [Co, Ci, k, k] and bias [Co] are views into the flat parameter buffer at the offsets of
/// `prefix.weight` and `prefix.bias`. Owns an output buffer only when it is used as a chain step;
/// blocks that sum into a residual call `run(into:accumulate:)` with their own buffer.
final class ConvLayer: ChainLayer {
    /// Geometry of one image (batch 1); calls scale the batch.
    let geometry: Conv2dGeometry
    let weightOffset: Int
    let biasOffset: Int
    private let workspace: Workspace
    private let output: FloatStorage?
    private var input: UnsafePointer<Float>?

    init(_ prefix: String, layout: ParameterLayout, geometry: Conv2dGeometry, maxBatch: Int?, workspace: Workspace) {
        precondition(geometry.batch == 1)
        let weight = layout.entry("\(prefix).weight"), bias = layout.entry("\(prefix).bias")
        precondition(weight.shape == [geometry.outChannels, geometry.inChannels, geometry.kernel, geometry.kernel],
                     "\(prefix).weight has shape \(weight.shape), expected for \(geometry)")
        precondition(bias.shape == [geometry.outChannels])
        self.geometry = geometry
        weightOffset = weight.offset
        biasOffset = bias.offset
        self.workspace = workspace
        output = maxBatch.map { FloatStorage(count: $0 * geometry.outputCount) }
    }

    /// The output of the last forward (only for layers that own one).
    var outputPointer: UnsafePointer<Float> { UnsafePointer(output!.pointer) }

    var forwardFlopsPerImage: Double { geometry.forwardFlops }
    var inputSize: Int { geometry.inputCount }
    var outputSize: Int { geometry.outputCount }

    func batched(_ batch: Int) -> Conv2dGeometry {
        var g = geometry
        g.batch = batch
        return g
    }

    /// out = conv(input) + bias, or out += that when `accumulate`.
    func run(into out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, batch: Int,
             parameters: UnsafePointer<Float>, accumulate: Bool) {
        self.input = input
        Conv2d.forward(out: out, inp: input, weight: parameters + weightOffset, bias: parameters + biasOffset,
                       geometry: batched(batch), accumulate: accumulate, workspace: workspace)
    }

    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float> {
        guard let output else { preconditionFailure("ConvLayer without its own output used as a chain step") }
        precondition(batch * outputSize <= output.count)
        run(into: output.pointer, input, batch: batch, parameters: parameters, accumulate: false)
        return UnsafePointer(output.pointer)
    }

    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        guard let input else { preconditionFailure("ConvLayer.backward before forward") }
        Conv2d.backward(dInput: dInput, dWeight: gradients + weightOffset, dBias: gradients + biasOffset,
                        dOut: dOutput, inp: input, weight: parameters + weightOffset,
                        geometry: batched(batch), accumulateInput: accumulateInput, workspace: workspace)
    }
}
