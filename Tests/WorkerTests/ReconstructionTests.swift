import TensorFiles
import Images
import Foundation
import Model
import Testing
@testable import Worker

@Suite struct ReconstructionTests {
    @Test func writesEachReconstructionBesideItsOriginalAndSkipsABadFile() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("scvae-recon-\(UUID().uuidString)").path
        let input = root + "/in", output = root + "/out"
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for i in 0..<3 {
            // 48 x 40 images: the evaluation transform resizes and centre-crops them to 32 x 32.
            let pixels = (0..<(48 * 40 * 3)).map { UInt8(($0 * (i + 3)) % 251) }
            let image = RGBImage(width: 48, height: 40, pixels: pixels)
            try BinaryFile.writeAtomically(try encodeJPEG(image), to: "\(input)/img\(i).jpg")
        }
        try BinaryFile.writeAtomically(Array("not a jpeg".utf8), to: "\(input)/broken.jpg")

        let layout = ParameterLayout(config: .tiny)
        var params = [Float](repeating: 0, count: layout.totalCount)
        params.withUnsafeMutableBufferPointer { initializeParameters($0, layout: layout, config: .tiny, seed: 1) }
        let result = try Reconstruction(config: .tiny, parameters: params, inputFolder: input, outputFolder: output, batchSize: 2)

        #expect(result.items.map(\.source) == ["img0.jpg", "img1.jpg", "img2.jpg"])
        #expect(result.skipped.count == 1 && result.skipped[0].file.hasSuffix("broken.jpg"))
        for i in 0..<3 {
            for suffix in ["original", "reconstruction"] {
                let written = try decodeImage(try BinaryFile.read("\(output)/img\(i)-\(suffix).jpg"))
                #expect(written.width == 32 && written.height == 32)
            }
        }
        // The figures are those of the model's own reconstruction of the transformed input, in
        // the same batch of two (img0, img1) as the tool ran it.
        let transform = ImageTransform(size: 32, mode: .evaluation)
        var x: [Float] = []
        for name in ["img0.jpg", "img1.jpg"] {
            x += transform.apply(try ImageDecoder().decodeFile(atPath: "\(input)/\(name)"), seed: 0, epoch: 0, sampleIndex: 0)
        }
        var xHat = [Float](repeating: 0, count: x.count)
        let model = SCVAEModel(config: .tiny, maxBatch: 2)
        let terms = params.withUnsafeBufferPointer { p in
            x.withUnsafeBufferPointer { xs in
                xHat.withUnsafeMutableBufferPointer { model.forward(parameters: p, images: xs.baseAddress!, batch: 2, reconstruction: $0.baseAddress!) }
            }
        }
        x = Array(x[transform.outputCount...])
        xHat = Array(xHat[transform.outputCount...])
        let unit = { (v: [Float]) in v.map { (min(max($0, -1), 1) + 1) / 2 } }
        #expect(abs(result.items[1].psnr - ImageQuality.psnr(unit(x), unit(xHat))) < 1e-9)
        #expect(abs(result.items[1].ssim - ImageQuality.ssim(unit(x), unit(xHat), channels: 3, height: 32, width: 32)) < 1e-9)
        #expect(result.items[1].psnr < 60, "an untrained model does not reproduce its input")
        #expect(result.sparsity > 0 && result.sparsity < 1)
        #expect(terms.sparsity > 0)
    }
}
