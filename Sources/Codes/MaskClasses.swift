import Images

/// Ground-truth masks for `scvae segment --masks`: a PNG per image, one colour per class. Colours
/// become class numbers in the order they are first met, the same numbers for every mask.
public struct MaskClasses: Sendable {
    public static let maximumClasses = 64
    /// Class colours as 0xRRGGBB, by class number.
    public private(set) var colours: [UInt32] = []
    private var classOfColour: [UInt32: Int] = [:]

    public init() {}

    public var count: Int { colours.count }

    /// The classes of the `size` x `size` crop that the evaluation transform takes of an image, read
    /// from the mask at `path` by nearest neighbour. The mask must have the image's shape
    /// (`imageWidth` x `imageHeight`, or a scaled copy of it).
    public mutating func classes(ofMask path: String, size: Int, imageWidth: Int, imageHeight: Int) throws(CodesError) -> [Int] {
        let mask: RGBImage
        do { mask = try ImageDecoder().decodeFile(atPath: path) } catch { throw .mask(path: path, reason: error.description) }
        // Same shape: the aspect ratios agree to a pixel.
        guard abs(mask.width * imageHeight - mask.height * imageWidth) <= max(imageWidth, imageHeight, mask.width, mask.height) else {
            throw .mask(path: path, reason: "\(mask.width)x\(mask.height) does not have the shape of its image (\(imageWidth)x\(imageHeight))")
        }
        let place = ImageTransform(size: size, mode: .evaluation).placement(width: mask.width, height: mask.height, seed: 0, epoch: 0, sampleIndex: 0)
        var out = [Int](repeating: 0, count: size * size)
        for y in 0..<size {
            let sy = min(mask.height - 1, Int((Double(y + place.cropY) + 0.5) * Double(mask.height) / Double(place.resizedHeight)))
            for x in 0..<size {
                let sx = min(mask.width - 1, Int((Double(x + place.cropX) + 0.5) * Double(mask.width) / Double(place.resizedWidth)))
                let i = (sy * mask.width + sx) * 3
                let colour = UInt32(mask.pixels[i]) << 16 | UInt32(mask.pixels[i + 1]) << 8 | UInt32(mask.pixels[i + 2])
                if let known = classOfColour[colour] {
                    out[y * size + x] = known
                } else {
                    guard colours.count < Self.maximumClasses else {
                        throw .mask(path: path, reason: "more than \(Self.maximumClasses) colours: a mask needs one colour per class (PNG, not JPEG)")
                    }
                    classOfColour[colour] = colours.count
                    out[y * size + x] = colours.count
                    colours.append(colour)
                }
            }
        }
        return out
    }
}
