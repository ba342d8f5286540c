import Foundation
import Images
import TensorFiles

/// Unsupervised segmentation (`scvae segment`): k-means over the codes of the latent positions
/// of a set of images (all of them, or a seeded sample of `sample` patches), then every patch
/// takes its nearest centre. Writes NAME-labels.png (a colour per cluster) and NAME-overlay.png
/// (the image under its labels) per image; with masks, scores the clusters against them
/// (`SegmentationScore`), beside a control that labels every patch at random with the clusters'
/// proportions and should sit near chance.
///
/// Two passes over the images (fit, then label), so memory holds the fitted patches' sparse codes
/// and one batch, never a label per patch of the set.
public struct Segmentation {
    public struct Summary: Codable, Sendable {
        public var images: Int
        /// Patches of the set, and how many of them k-means was fitted on.
        public var patches: Int
        public var fittedPatches: Int
        public var clusters: Int
        public var inertia: Double
        public var iterations: Int
        public var score: SegmentationScore?
        public var chanceControl: SegmentationScore?
        /// Mask colours (#RRGGBB) by class number, when scored.
        public var classColours: [String]?

        enum CodingKeys: String, CodingKey {
            case images, patches, fittedPatches = "fitted_patches", clusters, inertia, iterations, score
            case chanceControl = "chance_control", classColours = "class_colours"
        }
    }

    public static func run(model: CodeModel, inputs: ImageInputs, kmeans: KMeans, sample: Int? = nil,
                           outputFolder: String, masksFolder: String?) throws -> Summary {
        let config = model.config
        let size = config.imageSize, side = config.latentSize, patch = size / side, positions = side * side, atoms = config.atoms
        let total = inputs.paths.count * positions
        let chosen = sample.flatMap { $0 < total ? randomSubset($0, of: total, seed: kmeans.seed) : nil }
        var codes = SparseCodes(atoms: atoms)
        try inputs.encode(with: model) { range, dense in
            guard let chosen else { return codes.append(dense: dense) }
            for r in 0..<(range.count * positions) where chosen.contains(range.lowerBound * positions + r) {
                codes.append(dense: dense[(r * atoms)..<((r + 1) * atoms)])
            }
        }
        guard codes.rowCount >= kmeans.clusters else {
            throw CodesError.invalidArgument("\(codes.rowCount) patches cannot make \(kmeans.clusters) clusters")
        }
        let fit = kmeans.fit(codes)
        try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)

        let chance = ChanceLabels(fit.labels, clusters: kmeans.clusters, seed: kmeans.seed)
        var masks = MaskClasses()
        var confusion: [[Int]] = [], control: [[Int]] = []
        let decoder = ImageDecoder(), transform = ImageTransform(size: size, mode: .evaluation)
        let names = OutputNames.stems(inputs.paths)
        for first in stride(from: 0, to: inputs.paths.count, by: model.batchSize) {
            let batch = first..<min(first + model.batchSize, inputs.paths.count)
            var images: [RGBImage] = [], floats: [Float] = []
            for path in inputs.paths[batch] {
                do { images.append(try decoder.decodeFile(atPath: path, shorterSideAtLeast: size)) } catch {
                    throw CodesError.image(path: path, reason: error.description)
                }
                floats += transform.apply(images.last!, seed: 0, epoch: 0, sampleIndex: 0)
            }
            let nearest = kmeans.nearest(DenseRows(values: model.encode(floats), dimension: atoms), centers: fit.centers)
            for (j, i) in batch.enumerated() {
                let patchOf = { (p: Int) in (p / size / patch) * side + (p % size) / patch }
                let labels = (0..<(size * size)).map { Int(nearest[j * positions + patchOf($0)]) }
                let input = Array(floats[(j * model.imageFloats)..<((j + 1) * model.imageFloats)])
                let pictures = LabelPictures(labels: labels, image: input, size: size)
                let base = (outputFolder as NSString).appendingPathComponent(names[i])
                try BinaryFile.writeAtomically(try encodePNG(pictures.labels), to: base + "-labels.png")
                try BinaryFile.writeAtomically(try encodePNG(pictures.overlay), to: base + "-overlay.png")
                guard let masksFolder else { continue }
                let stem = ((inputs.paths[i] as NSString).lastPathComponent as NSString).deletingPathExtension
                let maskPath = (masksFolder as NSString).appendingPathComponent(stem + ".png")
                let truth = try masks.classes(ofMask: maskPath, size: size, imageWidth: images[j].width, imageHeight: images[j].height)
                let empty = [Int](repeating: 0, count: kmeans.clusters)
                while confusion.count < masks.count { confusion.append(empty); control.append(empty) }
                for p in 0..<(size * size) {
                    confusion[truth[p]][labels[p]] += 1
                    control[truth[p]][chance.label(ofPatch: i * positions + patchOf(p))] += 1
                }
            }
        }
        let scored = masksFolder != nil
        return Summary(images: inputs.paths.count, patches: total, fittedPatches: codes.rowCount, clusters: kmeans.clusters,
                       inertia: fit.inertia, iterations: fit.iterations,
                       score: scored ? SegmentationScore(confusion: confusion) : nil,
                       chanceControl: scored ? SegmentationScore(confusion: control) : nil,
                       classColours: scored ? masks.colours.map { String(format: "#%06X", $0) } : nil)
    }

    /// `count` distinct numbers below `total` (Floyd's sampling), seeded.
    static func randomSubset(_ count: Int, of total: Int, seed: UInt64) -> Set<Int> {
        var random = KeyedRandom(key: KeyedRandom.key([seed, 0x7361_6D70]))
        var chosen = Set<Int>(minimumCapacity: count)
        for j in (total - count)..<total {
            let pick = random.below(j + 1)
            chosen.insert(chosen.contains(pick) ? j : pick)
        }
        return chosen
    }
}

/// Random labels with the clusters' proportions among `labels`, a fixed one per patch number.
struct ChanceLabels {
    private let cumulative: [Double]
    private let random: KeyedRandom

    init(_ labels: [Int32], clusters: Int, seed: UInt64) {
        var counts = [Double](repeating: 0, count: clusters)
        for label in labels { counts[Int(label)] += 1 }
        var running = 0.0
        cumulative = counts.map { running += $0 / Double(labels.count); return running }
        random = KeyedRandom(key: KeyedRandom.key([seed, 0x6368_616E_6365]))
    }

    func label(ofPatch index: Int) -> Int {
        let u = Double(random.value(at: UInt64(index)) >> 11) * 0x1p-53
        return cumulative.firstIndex { u < $0 } ?? cumulative.count - 1
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
