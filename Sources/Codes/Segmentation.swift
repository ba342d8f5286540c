import Foundation
import Images
import TensorFiles

/// Unsupervised segmentation (`scvae segment`): k-means over the codes of every latent position
/// of a set of images; each patch takes its cluster. Writes NAME-labels.png (a colour per
/// cluster) and NAME-overlay.png (the image under its labels) per image, and segment.json; with
/// masks, scores the clusters against them (`SegmentationScore`), and scores the same labels
/// shuffled over all patches as a control that should sit near chance.
public struct Segmentation {
    public struct Summary: Codable, Sendable {
        public var images: Int
        public var patches: Int
        public var clusters: Int
        public var inertia: Double
        public var iterations: Int
        public var score: SegmentationScore?
        public var shuffledControl: SegmentationScore?
        /// Mask colours (#RRGGBB) by class number, when scored.
        public var classColours: [String]?

        enum CodingKeys: String, CodingKey {
            case images, patches, clusters, inertia, iterations, score, shuffledControl = "shuffled_control"
            case classColours = "class_colours"
        }
    }

    public static func run(model: CodeModel, inputs: ImageInputs, kmeans: KMeans, outputFolder: String,
                           masksFolder: String?) throws -> Summary {
        let config = model.config
        var codes = SparseCodes(atoms: config.atoms)
        try inputs.encode(with: model) { _, dense in codes.append(dense: dense) }
        guard codes.rowCount >= kmeans.clusters else {
            throw CodesError.invalidArgument("\(codes.rowCount) patches cannot make \(kmeans.clusters) clusters")
        }
        let fit = kmeans.fit(codes)
        try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)

        let size = config.imageSize, side = config.latentSize, patch = size / side, positions = side * side
        var shuffled = fit.labels
        var random = KeyedRandom(key: KeyedRandom.key([kmeans.seed, 0x7368_7566]))
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, random.below(i + 1)) }
        var masks = MaskClasses()
        var confusion: [[Int]] = [], control: [[Int]] = []
        let decoder = ImageDecoder()
        let names = OutputNames.stems(inputs.paths)
        for (i, path) in inputs.paths.enumerated() {
            let image: RGBImage
            do { image = try decoder.decodeFile(atPath: path, shorterSideAtLeast: size) } catch {
                throw CodesError.image(path: path, reason: error.description)
            }
            let input = ImageTransform(size: size, mode: .evaluation).apply(image, seed: 0, epoch: 0, sampleIndex: 0)
            let labels = (0..<(size * size)).map { p in Int(fit.labels[i * positions + (p / size / patch) * side + (p % size) / patch]) }
            let pictures = LabelPictures(labels: labels, image: input, size: size)
            let base = (outputFolder as NSString).appendingPathComponent(names[i])
            try BinaryFile.writeAtomically(try encodePNG(pictures.labels), to: base + "-labels.png")
            try BinaryFile.writeAtomically(try encodePNG(pictures.overlay), to: base + "-overlay.png")
            guard let masksFolder else { continue }
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            let maskPath = (masksFolder as NSString).appendingPathComponent(stem + ".png")
            let truth = try masks.classes(ofMask: maskPath, size: size, imageWidth: image.width, imageHeight: image.height)
            let row = [Int](repeating: 0, count: kmeans.clusters)
            while confusion.count < masks.count { confusion.append(row); control.append(row) }
            for p in 0..<(size * size) {
                confusion[truth[p]][labels[p]] += 1
                control[truth[p]][Int(shuffled[i * positions + (p / size / patch) * side + (p % size) / patch])] += 1
            }
        }
        let scored = masksFolder != nil
        return Summary(images: inputs.paths.count, patches: codes.rowCount, clusters: kmeans.clusters, inertia: fit.inertia,
                       iterations: fit.iterations,
                       score: scored ? SegmentationScore(confusion: confusion) : nil,
                       shuffledControl: scored ? SegmentationScore(confusion: control) : nil,
                       classColours: scored ? masks.colours.map { String(format: "#%06X", $0) } : nil)
    }
}

/// A label map drawn in cluster colours, and blended half and half over its image.
struct LabelPictures {
    var labels: RGBImage
    var overlay: RGBImage

    /// `labels`: a cluster per pixel (size x size); `image`: CHW floats in [-1, 1].
    init(labels clusterOfPixel: [Int], image: [Float], size: Int) {
        let original = image.withUnsafeBufferPointer { RGBImage(chwSigned: $0, width: size, height: size) }
        var map = [UInt8](repeating: 0, count: size * size * 3), blend = map
        for p in 0..<(size * size) {
            let colour = Palette.colour(clusterOfPixel[p])
            for (c, value) in [colour.0, colour.1, colour.2].enumerated() {
                map[p * 3 + c] = value
                blend[p * 3 + c] = UInt8((Int(value) + Int(original.pixels[p * 3 + c]) + 1) / 2)
            }
        }
        labels = RGBImage(width: size, height: size, pixels: map)
        overlay = RGBImage(width: size, height: size, pixels: blend)
    }
}

/// Distinct colours for cluster numbers: hues a golden angle apart.
enum Palette {
    static func colour(_ index: Int) -> (UInt8, UInt8, UInt8) {
        let hue = (Double(index) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1) * 6
        let (saturation, value) = (index % 2 == 0 ? 0.8 : 0.55, index % 3 == 2 ? 0.7 : 0.95)
        let sector = Int(hue), fraction = hue - Double(sector)
        let (p, q, t) = (value * (1 - saturation), value * (1 - saturation * fraction), value * (1 - saturation * (1 - fraction)))
        let rgb: (Double, Double, Double)
        switch sector {
        case 0: rgb = (value, t, p)
        case 1: rgb = (q, value, p)
        case 2: rgb = (p, value, t)
        case 3: rgb = (p, q, value)
        case 4: rgb = (t, p, value)
        default: rgb = (value, p, q)
        }
        return (UInt8(rgb.0 * 255), UInt8(rgb.1 * 255), UInt8(rgb.2 * 255))
    }
}
