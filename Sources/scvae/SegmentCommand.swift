import ArgumentParser
import Codes
import CommandOptions
import Foundation
import TensorFiles

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Unsupervised segmentation: k-means over the codes of every patch of a set of images; label maps, overlays, and scores against masks.")

    @OptionGroup var weights: WeightsOptions

    @Option(help: "A folder of images (.jpg, .jpeg, .png) or one image.")
    var input: String

    @Option(help: "Number of clusters.")
    var clusters: Int

    @Option(help: "Output folder: NAME-labels.png and NAME-overlay.png per image, segment.json.")
    var out: String

    @Option(help: "Folder of ground-truth masks, NAME.png per image NAME.*, one colour per class: report mean IoU and pixel accuracy.")
    var masks: String?

    @Option(help: "Fit k-means on this many patches drawn at random (then label every patch): bounds memory on large sets. Default: every patch.")
    var sample: Int?

    @Option(help: "Seed of the k-means++ starts and of --sample.")
    var seed: UInt64 = 0

    @Option(help: "k-means starts; the lowest inertia wins.")
    var starts: Int = 3

    @Option(help: "Lloyd iterations at most.")
    var maxIterations: Int = 300

    @Option(help: "Patches whose distances are computed at once (memory: this many rows of codes and of distances).")
    var chunkRows: Int = 4096

    @Option(help: "Images per forward pass.")
    var batch: Int = 8

    func validate() throws {
        guard clusters >= 1 else { throw ValidationError("--clusters must be at least 1.") }
        if let sample, sample < clusters { throw ValidationError("--sample must be at least --clusters.") }
        guard starts >= 1, maxIterations >= 1, chunkRows >= 1, batch >= 1 else {
            throw ValidationError("--starts, --max-iterations, --chunk-rows and --batch must be at least 1.")
        }
    }

    func run() throws {
        let codeModel = try CodeModel(weights: weights.load(), batchSize: batch)
        let kmeans = KMeans(clusters: clusters, seed: seed, initializations: starts, maxIterations: maxIterations, chunkRows: chunkRows)
        let summary = try Segmentation.run(model: codeModel, inputs: try ImageInputs(path: input), kmeans: kmeans,
                                           sample: sample, outputFolder: out, masksFolder: masks)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try BinaryFile.writeAtomically(Array(try encoder.encode(summary)), to: (out as NSString).appendingPathComponent("segment.json"))
        print("\(summary.images) images, \(summary.patches) patches (k-means on \(summary.fittedPatches)) in \(clusters) clusters: inertia \(String(format: "%.4g", summary.inertia)) after \(summary.iterations) iterations")
        if let score = summary.score, let control = summary.chanceControl {
            print("against \(score.classIoU.count) mask classes: mean IoU \(String(format: "%.4f", score.meanIoU)), pixel accuracy \(String(format: "%.4f", score.pixelAccuracy)) (random labels: \(String(format: "%.4f", control.meanIoU)), \(String(format: "%.4f", control.pixelAccuracy)))")
        }
        print("written to \(out)")
    }
}
