import TensorFiles
extension RGBImage {
    /// An image from float32 CHW values in [-1, 1] (the model's input and output range); values
    /// outside are clamped, then mapped (v + 1) * 127.5 and rounded.
    public init(chwSigned values: UnsafeBufferPointer<Float>, width: Int, height: Int) {
        precondition(values.count == 3 * width * height, "RGBImage: \(values.count) values for \(width)x\(height)x3")
        let plane = width * height
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for p in 0..<plane {
            for c in 0..<3 {
                let v = min(max(values[c * plane + p], -1), 1)
                pixels[p * 3 + c] = UInt8(((v + 1) * 127.5).rounded())
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }
}
