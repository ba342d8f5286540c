import Codes
import Foundation
import Images
import TensorFiles
import Testing

@Suite struct SegmentationTests {
    /// A mask of `width` x `height`: black left of `split`, white from it on.
    static func mask(width: Int, height: Int, split: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in split..<width { for c in 0..<3 { pixels[(y * width + x) * 3 + c] = 255 } }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test func masksAreCroppedAsTheirImagesAndColoursBecomeClasses() throws {
        let folder = try TemporaryFolder()
        // 64 x 48 -> resized to 43 x 32 (shorter side 32), centre crop from x = 5 or 6.
        let path = folder.file("m.png")
        try BinaryFile.writeAtomically(try encodePNG(Self.mask(width: 64, height: 48, split: 32)), to: path)
        var classes = MaskClasses()
        let labels = try classes.classes(ofMask: path, size: 32, imageWidth: 64, imageHeight: 48)
        #expect(classes.colours == [0x000000, 0xFFFFFF])
        let place = ImageTransform(size: 32, mode: .evaluation).placement(width: 64, height: 48, seed: 0, epoch: 0, sampleIndex: 0)
        for x in 0..<32 {
            let source = Int((Double(x + place.cropX) + 0.5) * 64 / Double(place.resizedWidth))
            #expect(labels[5 * 32 + x] == (source < 32 ? 0 : 1), "x \(x)")
        }
        // A mask whose shape is not the image's.
        #expect(throws: CodesError.self) { try classes.classes(ofMask: path, size: 32, imageWidth: 48, imageHeight: 48) }
        #expect(throws: CodesError.self) { try classes.classes(ofMask: folder.file("none.png"), size: 32, imageWidth: 64, imageHeight: 48) }
    }

    @Test func segmentsASetAndScoresItAgainstMasks() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images"), masks = try folder.folder("masks"), out = folder.file("out")
        let paths = try TestImages.write(4, into: images)
        for i in 0..<4 {
            try BinaryFile.writeAtomically(try encodePNG(Self.mask(width: 40, height: 36, split: 10 + 5 * i)), to: "\(masks)/img\(i).png")
        }
        let model = CodeModel(weights: try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny))
        let summary = try Segmentation.run(model: model, inputs: try ImageInputs(path: images), kmeans: KMeans(clusters: 3, seed: 2),
                                           outputFolder: out, masksFolder: masks)
        #expect(summary.images == 4 && summary.patches == 4 * 64 && summary.fittedPatches == 4 * 64 && summary.clusters == 3)
        let score = try #require(summary.score), control = try #require(summary.chanceControl)
        #expect(score.classIoU.count == 2 && summary.classColours == ["#000000", "#FFFFFF"])
        #expect((0...1).contains(score.meanIoU) && (0...1).contains(score.pixelAccuracy))
        #expect((0...1).contains(control.meanIoU))
        for path in paths {
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            let labels = try decodeImage(try BinaryFile.read("\(out)/\(stem)-labels.png"))
            let overlay = try decodeImage(try BinaryFile.read("\(out)/\(stem)-overlay.png"))
            #expect(labels.width == 32 && labels.height == 32 && overlay.width == 32)
            // Labels are constant over each 4 x 4 patch.
            for y in 0..<32 { for x in 0..<32 { #expect(rgb(labels, x, y) == rgb(labels, x / 4 * 4, y / 4 * 4)) } }
        }
        // Without masks there is no score; a missing mask is an error naming it.
        let plain = try Segmentation.run(model: model, inputs: try ImageInputs(path: images), kmeans: KMeans(clusters: 2),
                                         outputFolder: out, masksFolder: nil)
        #expect(plain.score == nil)
        // Fitted on a sample of 50 of the 256 patches, every image is still labelled.
        let sampled = try Segmentation.run(model: model, inputs: try ImageInputs(path: images), kmeans: KMeans(clusters: 2),
                                           sample: 50, outputFolder: folder.file("sampled"), masksFolder: masks)
        #expect(sampled.patches == 256 && sampled.fittedPatches == 50 && sampled.score != nil)
        #expect(FileManager.default.fileExists(atPath: folder.file("sampled/img3-overlay.png")))
        try FileManager.default.removeItem(atPath: "\(masks)/img2.png")
        let error = try #require(thrownError {
            _ = try Segmentation.run(model: model, inputs: try ImageInputs(path: images), kmeans: KMeans(clusters: 2),
                                     outputFolder: out, masksFolder: masks)
        })
        #expect("\(error)".contains("\(masks)/img2.png"), "\(error)")
    }
}
