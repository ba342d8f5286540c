/// Nearest-neighbour x2 upsampling on NHWC maps (the first half of the decoder's Upsample).
///
/// Legend: B = batch, H x W = input map, C = channels. inp [B, H, W, C] -> out [B, 2H, 2W, C];
/// out[b, 2y+i, 2x+j, :] = inp[b, y, x, :] for i, j in {0, 1}.
enum NearestUpsample {
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        batch: Int, height: Int, width: Int, channels: Int) {
        for b in 0..<batch {
            for y in 0..<height {
                for x in 0..<width {
                    let src = inp + ((b * height + y) * width + x) * channels
                    for i in 0..<2 {
                        for j in 0..<2 {
                            let dst = out + ((b * 2 * height + 2 * y + i) * 2 * width + 2 * x + j) * channels
                            dst.update(from: src, count: channels)
                        }
                    }
                }
            }
        }
    }

    /// dInput += the sum of the four output gradients each input pixel was copied to.
    static func backward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         batch: Int, height: Int, width: Int, channels: Int) {
        for b in 0..<batch {
            for y in 0..<height {
                for x in 0..<width {
                    let dst = dInput + ((b * height + y) * width + x) * channels
                    for i in 0..<2 {
                        for j in 0..<2 {
                            let src = dOut + ((b * 2 * height + 2 * y + i) * 2 * width + 2 * x + j) * channels
                            for c in 0..<channels { dst[c] += src[c] }
                        }
                    }
                }
            }
        }
    }
}
