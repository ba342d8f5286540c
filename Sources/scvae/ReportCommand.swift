import ArgumentParser
import CommandOptions
import Foundation
import Dataset
import Images
import Model
import Report
import TensorFiles
import Worker

/// `scvae report DIR`: writes DIR/report.html from the run's files.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: one self-contained page (no network) with the run's summary, curves, step times and events.")

    @Argument(help: "The run's folder (its --checkpoint-dir).")
    var runDirectory: String

    @Option(help: "The run's step metrics, if the run wrote them elsewhere (default: RUN_DIR/metrics.jsonl).")
    var metrics: String?

    @Option(help: "Where to write the page (default: RUN_DIR/report.html).")
    var out: String?

    @Option(help: "Folder of images to show reconstructed by the final weights (default: the built-in sample data).")
    var images: String?

    @Option(name: .customLong("grid-images"), help: "How many images the reconstruction picture shows.")
    var gridImages: Int = 8

    func validate() throws {
        guard (1...64).contains(gridImages) else { throw ValidationError("--grid-images must be between 1 and 64.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        // May re-execute this process (OpenBLAS's kernels are chosen at load time): first.
        BLASKernels.useFastestKernels()
        let record: RunRecord
        do { record = try RunRecord.load(folder: runDirectory, metricsFile: metrics) } catch {
            throw ValidationError(error.description)
        }
        let path = out ?? (runDirectory as NSString).appendingPathComponent("report.html")
        let (picture, note) = reconstructionPicture(record)
        do {
            try ReportPage.render(record, picture: picture, pictureNote: note).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ValidationError("cannot write \(path): \(error.localizedDescription)")
        }
        print("wrote \(path): \(record.steps.count) steps, \(record.events.count) events\(record.unreadableLines > 0 ? ", \(record.unreadableLines) unreadable line(s) left out" : "")")
    }

    /// The final weights' reconstructions of the first --grid-images images of --images, also
    /// written to RUN_DIR/samples/final.jpg; or why there is none.
    private func reconstructionPicture(_ record: RunRecord) -> (ReportPage.Picture?, String?) {
        let weights = (runDirectory as NSString).appendingPathComponent("final/model.safetensors")
        guard FileManager.default.fileExists(atPath: weights) else {
            return (nil, "No final weights (final/model.safetensors) yet: the run has not ended.")
        }
        guard let name = record.summary.first(where: { $0.0 == "config" })?.1, let config = ModelConfig.named(name) else {
            return (nil, "final/summary.json names no configuration this build knows.")
        }
        do {
            let folder = try images ?? SampleData.ensureInDefaultCache()
            let index = try DatasetIndex.scan(root: folder)
            let paths = (0..<min(gridImages, index.count)).map(index.path(of:))
            let loaded = try WeightsFile.load(weights, layout: ParameterLayout(config: config))
            let grid = try Reconstruction.grid(config: config, parameters: loaded.parameters, imagePaths: paths)
            let jpeg = try encodeJPEG(grid.image, quality: 92)
            let samples = (runDirectory as NSString).appendingPathComponent("samples")
            try FileManager.default.createDirectory(atPath: samples, withIntermediateDirectories: true)
            try BinaryFile.writeAtomically(jpeg, to: samples + "/final.jpg")
            let caption = String(format: "The first %d images of %@ (top) and their reconstructions by the final weights (bottom): mean PSNR %.2f dB. Also in samples/final.jpg.",
                                 grid.count, folder, grid.meanPSNR)
            return (ReportPage.Picture(caption: caption, jpeg: jpeg, width: grid.image.width), nil)
        } catch {
            return (nil, "No reconstructions: \(error)")
        }
    }
}
