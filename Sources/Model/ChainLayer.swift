/// One step of an Encoder or Decoder: owns its output and caches for up to `maxBatch` images.
///
/// llm.c style: forward writes the caches backward reads; backward accumulates (+=) into the
/// input gradient and into the flat gradient buffer at the parameter offsets.
protocol ChainLayer: AnyObject {
    /// Floats per image of the input and of the output.
    var inputSize: Int { get }
    var outputSize: Int { get }
    /// Multiply-add FLOPs (x2) of the GEMM work in one image's forward pass, for benchmarks.
    var forwardFlopsPerImage: Double { get }
    /// Runs `batch` images; the returned output stays valid until this layer's next forward.
    /// The layer keeps `input` for its backward, so the caller must keep it alive until then.
    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float>
    /// dInput += dL/dinput (skipped when nil), or dInput = dL/dinput when `accumulateInput` is
    /// false (then the caller need not zero it); gradients += dL/dparameters.
    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>, accumulateInput: Bool)
}

extension ChainLayer {
    /// dInput += dL/dinput (skipped when nil); gradients += dL/dparameters.
    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        backward(dOutput: dOutput, dInput: dInput, batch: batch, parameters: parameters, gradients: gradients,
                 accumulateInput: true)
    }
}

/// Layers run in order; backward passes gradients between them through two shared buffers.
final class LayerChain {
    let layers: [ChainLayer]
    private let workspace: Workspace

    init(layers: [ChainLayer], workspace: Workspace) {
        precondition(!layers.isEmpty)
        for (a, b) in zip(layers, layers.dropFirst()) { precondition(a.outputSize == b.inputSize) }
        self.layers = layers
        self.workspace = workspace
    }

    var inputSize: Int { layers.first!.inputSize }
    var outputSize: Int { layers.last!.outputSize }
    var forwardFlopsPerImage: Double { layers.reduce(0) { $0 + $1.forwardFlopsPerImage } }

    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float> {
        var current = input
        for layer in layers { current = layer.forward(current, batch: batch, parameters: parameters) }
        return current
    }

    /// dInput += dL/dinput (nil: the input needs no gradient, e.g. the images).
    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        var current = dOutput
        var useA = true
        for index in layers.indices.reversed() {
            let layer = layers[index]
            if index == 0 {
                layer.backward(dOutput: current, dInput: dInput, batch: batch, parameters: parameters, gradients: gradients)
            } else {
                // Every layer writes its whole input gradient, so the buffer is not zeroed first.
                let next = workspace.floats(useA ? .chainGradientA : .chainGradientB, layer.inputSize * batch)
                layer.backward(dOutput: current, dInput: next, batch: batch, parameters: parameters, gradients: gradients,
                               accumulateInput: false)
                current = UnsafePointer(next)
                useA.toggle()
            }
        }
    }
}
