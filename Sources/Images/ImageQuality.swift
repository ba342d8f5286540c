import Foundation
import TensorFiles

/// Image quality measures of the paper's evaluation (docs/model.md): PSNR and SSIM on images in [0, 1] (data range 1).
///
/// Images are float32 CHW with the same shape; SSIM is computed per channel and averaged.
public enum ImageQuality {
    /// Peak signal-to-noise ratio in dB: 10 log10(1 / MSE); +infinity for identical images.
    public static func psnr(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count && !a.isEmpty, "psnr: images differ in size")
        var sum = 0.0
        for i in a.indices {
            let d = Double(a[i]) - Double(b[i])
            sum += d * d
        }
        let mse = sum / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    /// Structural similarity (Wang et al. 2004): an 11 x 11 Gaussian window with sigma 1.5,
    /// K1 = 0.01, K2 = 0.03, data range 1, over every position where the window fits, averaged
    /// over positions and channels. Images smaller than the window use a window of their size.
    public static func ssim(_ a: [Float], _ b: [Float], channels: Int, height: Int, width: Int) -> Double {
        precondition(a.count == channels * height * width && b.count == a.count, "ssim: images differ in size")
        let side = min(11, height, width)
        let window = gaussianWindow(side: side, sigma: 1.5)
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        var total = 0.0
        var count = 0
        for channel in 0..<channels {
            let base = channel * height * width
            for top in 0...(height - side) {
                for left in 0...(width - side) {
                    var ma = 0.0, mb = 0.0, saa = 0.0, sbb = 0.0, sab = 0.0
                    for y in 0..<side {
                        for x in 0..<side {
                            let w = window[y * side + x]
                            let i = base + (top + y) * width + left + x
                            let va = Double(a[i]), vb = Double(b[i])
                            ma += w * va
                            mb += w * vb
                            saa += w * va * va
                            sbb += w * vb * vb
                            sab += w * va * vb
                        }
                    }
                    let varA = saa - ma * ma, varB = sbb - mb * mb, cov = sab - ma * mb
                    total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (varA + varB + c2))
                    count += 1
                }
            }
        }
        return total / Double(count)
    }

    /// A normalised 2-D Gaussian of side x side weights.
    static func gaussianWindow(side: Int, sigma: Double) -> [Double] {
        let centre = Double(side - 1) / 2
        let line = (0..<side).map { i in exp(-(Double(i) - centre) * (Double(i) - centre) / (2 * sigma * sigma)) }
        let sum = line.reduce(0, +)
        let normalised = line.map { $0 / sum }
        return (0..<(side * side)).map { normalised[$0 / side] * normalised[$0 % side] }
    }
}
