import TensorFiles
/// The training and evaluation transforms of the paper (docs/model.md), at any size S:
///
/// - training: resize the shorter side to S (antialiased), random S x S crop, horizontal flip
///   with probability 1/2;
/// - evaluation: resize the shorter side to S, centre S x S crop;
///
/// then float32 CHW with values x / 127.5 - 1 in [-1, 1].
///
/// The crop and flip of a sample are drawn from `KeyedRandom(.augmentation, seed, epoch,
/// sampleIndex)`: first the crop row (uniform in 0...H'-S), then the crop column (0...W'-S),
/// then the flip (`coin()`), where W' x H' is the resized size. A sample therefore gets the same
/// augmentation whichever rank decodes it and whenever.
public struct ImageTransform: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        case training
        case evaluation
    }

    /// Output side S.
    public var size: Int
    public var mode: Mode

    public init(size: Int, mode: Mode) {
        precondition(size > 0, "ImageTransform: size must be positive")
        self.size = size
        self.mode = mode
    }

    /// Floats in one output image (3 * S * S).
    public var outputCount: Int { 3 * size * size }

    /// Where to crop and whether to flip, in the coordinates of the resized image.
    public struct Placement: Sendable, Equatable {
        public var resizedWidth: Int
        public var resizedHeight: Int
        public var cropX: Int
        public var cropY: Int
        public var flip: Bool
    }

    /// The placement for an image of `width` x `height` (as decoded).
    public func placement(width: Int, height: Int, seed: UInt64, epoch: Int, sampleIndex: Int) -> Placement {
        let resized = sizeWithShorterSide(width: width, height: height, shorterSide: size)
        switch mode {
        case .training:
            var random = KeyedRandom(.augmentation, seed: seed, epoch, sampleIndex)
            let y = random.below(resized.height - size + 1)
            let x = random.below(resized.width - size + 1)
            let flip = random.coin()
            return Placement(resizedWidth: resized.width, resizedHeight: resized.height, cropX: x, cropY: y, flip: flip)
        case .evaluation:
            return Placement(resizedWidth: resized.width, resizedHeight: resized.height,
                             cropX: ImageTransform.centredOffset(resized.width - size),
                             cropY: ImageTransform.centredOffset(resized.height - size), flip: false)
        }
    }

    /// Half the slack, rounded half to even as torchvision's CenterCrop (Python's round) does.
    static func centredOffset(_ slack: Int) -> Int {
        let half = slack / 2
        return slack % 2 == 1 && half % 2 == 1 ? half + 1 : half
    }

    /// Transforms a decoded image into `output` (3 * S * S floats, CHW).
    public func apply(_ image: RGBImage, seed: UInt64, epoch: Int, sampleIndex: Int,
                      into output: UnsafeMutableBufferPointer<Float>) {
        let place = placement(width: image.width, height: image.height, seed: seed, epoch: epoch, sampleIndex: sampleIndex)
        apply(image, placement: place, into: output)
    }

    /// Transforms a decoded image into a new array of 3 * S * S floats, CHW.
    public func apply(_ image: RGBImage, seed: UInt64, epoch: Int, sampleIndex: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: outputCount) { buffer, initialized in
            apply(image, seed: seed, epoch: epoch, sampleIndex: sampleIndex, into: buffer)
            initialized = outputCount
        }
    }

    /// Resizes only the crop window, then flips and lays it out as CHW in [-1, 1].
    public func apply(_ image: RGBImage, placement place: Placement, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count >= outputCount, "ImageTransform: output buffer too small")
        // Weights are positive and sum to 1, so only rounding can leave [-1, 1]: clamp.
        let mapping = ResampleOutput(scale: 1 / 127.5, offset: -1, lowest: -1, highest: 1, flip: place.flip)
        resampleWindow(image, width: place.resizedWidth, height: place.resizedHeight,
                       columns: place.cropX..<(place.cropX + size), rows: place.cropY..<(place.cropY + size),
                       output: mapping, into: output.baseAddress!)
    }
}
