import ArgumentParser
import Codes
import CommandOptions
import Foundation

struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Write the sparse codes of images (every latent position) to a safetensors file (docs/codes.md).")

    @OptionGroup var weights: WeightsOptions

    @Option(help: "A folder of images (.jpg, .jpeg, .png, sorted by name) or one image; each is resized and centre-cropped to the model's size.")
    var input: String

    @Option(help: "The codes file to write (safetensors).")
    var out: String

    @Option(help: "Images per forward pass.")
    var batch: Int = 8

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1.") }
    }

    func run() throws {
        let codeModel = try CodeModel(weights: weights.load(), batchSize: batch)
        let inputs = try ImageInputs(path: input)
        let start = Date()
        let file = try CodesFile.encode(inputs, with: codeModel)
        let seconds = Date().timeIntervalSince(start)
        try file.write(to: out)
        let rows = Double(file.codes.rowCount), nonzero = Double(file.codes.nonzeroCount)
        let sparsity = 1 - nonzero / (rows * Double(file.codes.atoms))
        print("\(file.imageCount) images, \(file.positions) positions each: sparsity \(String(format: "%.4f", sparsity)), \(String(format: "%.1f", nonzero / rows)) active atoms per position; \(String(format: "%.1f", Double(file.imageCount) / seconds)) images/s; written to \(out)")
    }
}

struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode a codes file (scvae encode) back into images: OUT/NAME.png per source image.")

    @OptionGroup var weights: WeightsOptions

    @Option(help: "The codes file (scvae encode).")
    var codes: String

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Images per decoder pass.")
    var batch: Int = 8

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1.") }
    }

    func run() throws {
        let loaded = try weights.load()
        let file = try CodesFile.read(codes)
        try file.check(against: loaded, path: codes)
        let codeModel = CodeModel(weights: loaded, batchSize: batch)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let names = OutputNames.stems(file.files)
        try file.decode(with: codeModel) { i, image in
            try writePNG(image, side: file.imageSize, to: (out as NSString).appendingPathComponent(names[i] + ".png"))
        }
        print("\(file.imageCount) images decoded to \(out)")
    }
}
