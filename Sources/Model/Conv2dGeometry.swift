/// Shape of one 2-D convolution on NHWC activations.
///
/// Legend: B = batch, H x W = input map, OH x OW = output map, Ci/Co = input/output channels,
/// k = kernel side. Padding is `padBefore` zeros on the top and left, `padAfter` on the bottom and
/// right; Downsample needs the asymmetric (0, 1) case, the rest are symmetric.
public struct Conv2dGeometry: Sendable, Equatable, CustomStringConvertible {
    public var batch: Int
    public var height: Int
    public var width: Int
    public var inChannels: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padBefore: Int
    public var padAfter: Int

    public init(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int,
                kernel: Int, stride: Int, padBefore: Int, padAfter: Int) {
        self.batch = batch
        self.height = height
        self.width = width
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padBefore = padBefore
        self.padAfter = padAfter
    }

    /// 3x3, stride 1, one zero on every side: same-size output.
    public static func same3x3(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int) -> Self {
        Self(batch: batch, height: height, width: width, inChannels: inChannels, outChannels: outChannels,
             kernel: 3, stride: 1, padBefore: 1, padAfter: 1)
    }

    /// 1x1 (nin_shortcut, attention projections).
    public static func pointwise(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int) -> Self {
        Self(batch: batch, height: height, width: width, inChannels: inChannels, outChannels: outChannels,
             kernel: 1, stride: 1, padBefore: 0, padAfter: 0)
    }

    /// Downsample: zero-pad right and bottom by one, then 3x3 stride 2 without padding.
    public static func downsample(batch: Int, height: Int, width: Int, channels: Int) -> Self {
        Self(batch: batch, height: height, width: width, inChannels: channels, outChannels: channels,
             kernel: 3, stride: 2, padBefore: 0, padAfter: 1)
    }

    public var outHeight: Int { (height + padBefore + padAfter - kernel) / stride + 1 }
    public var outWidth: Int { (width + padBefore + padAfter - kernel) / stride + 1 }
    /// Floats in the input and output activations.
    public var inputCount: Int { batch * height * width * inChannels }
    public var outputCount: Int { batch * outHeight * outWidth * outChannels }
    /// PyTorch weight [Co, Ci, k, k].
    public var weightCount: Int { outChannels * inChannels * kernel * kernel }
    /// Rows of the im2col matrix (one per output pixel) and its width (k * k * Ci).
    var rows: Int { batch * outHeight * outWidth }
    var patchWidth: Int { kernel * kernel * inChannels }
    /// Multiply-adds times two of one forward pass.
    public var forwardFlops: Double { 2 * Double(rows) * Double(patchWidth) * Double(outChannels) }
    /// A 1x1 stride-1 unpadded conv needs no im2col: the input already is the patch matrix.
    var isPlainProduct: Bool { kernel == 1 && stride == 1 && padBefore == 0 && padAfter == 0 }

    public var description: String {
        "conv \(kernel)x\(kernel)/\(stride) pad(\(padBefore),\(padAfter)) B\(batch) \(height)x\(width)x\(inChannels) -> \(outHeight)x\(outWidth)x\(outChannels)"
    }
}
