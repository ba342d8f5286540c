/// Nearest x2 of the decoder's Upsample as a chain step (its conv is the next step).
///
/// Legend: H x W = input map, C = channels; [B, H, W, C] -> [B, 2H, 2W, C]. No parameters.
final class UpsampleLayer: ChainLayer {
    let height: Int
    let width: Int
    let channels: Int
    private let output: FloatStorage

    init(height: Int, width: Int, channels: Int, maxBatch: Int) {
        self.height = height
        self.width = width
        self.channels = channels
        output = FloatStorage(count: maxBatch * 4 * height * width * channels)
    }

    var forwardFlopsPerImage: Double { 0 }
    var inputSize: Int { height * width * channels }
    var outputSize: Int { 4 * height * width * channels }

    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float> {
        NearestUpsample.forward(out: output.pointer, inp: input, batch: batch, height: height, width: width, channels: channels)
        return UnsafePointer(output.pointer)
    }

    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        guard let dInput else { return }
        if !accumulateInput { dInput.update(repeating: 0, count: batch * inputSize) }
        NearestUpsample.backward(dInput: dInput, dOut: dOutput, batch: batch, height: height, width: width, channels: channels)
    }
}
