import Foundation
import Testing
@testable import TensorFiles
@testable import Images
@testable import Dataset

@Suite struct SampleDataTests {
    @Test func generationIsDeterministicDecodableAndComplete() throws {
        let first = TemporaryDirectory(), second = TemporaryDirectory()
        let a = try SampleData.ensure(at: first.path, count: 40, size: 32, seed: 7)
        let b = try SampleData.ensure(at: second.path, count: 40, size: 32, seed: 7)
        #expect(a.hasSuffix("/sample-v1-n40-s32-seed7"))
        let indexA = try DatasetIndex.scan(root: a), indexB = try DatasetIndex.scan(root: b)
        #expect(indexA.count == 40)
        #expect(indexA.classNames == SampleData.classNames)
        #expect(indexA.fingerprint == indexB.fingerprint)
        let decoder = ImageDecoder()
        for i in 0..<indexA.count {
            let bytesA = try BinaryFile.read(indexA.path(of: i)), bytesB = try BinaryFile.read(indexB.path(of: i))
            #expect(bytesA == bytesB, "\(indexA.samples[i].path) is byte-identical across generations")
            let image = try decoder.decode(bytesA)
            #expect(min(image.width, image.height) == 32 && max(image.width, image.height) <= 40)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: first.path)
        #expect(leftovers == ["sample-v1-n40-s32-seed7"], "no temporary folder remains")
    }

    @Test func anExistingSetIsReused() throws {
        let cache = TemporaryDirectory()
        let path = try SampleData.ensure(at: cache.path, count: 8, size: 16, seed: 1)
        cache.write([1], to: "sample-v1-n8-s16-seed1/marker")
        #expect(try SampleData.ensure(at: cache.path, count: 8, size: 16, seed: 1) == path)
        #expect(FileManager.default.fileExists(atPath: path + "/marker"), "the set was not regenerated")
        #expect(try SampleData.ensure(at: cache.path, count: 8, size: 16, seed: 2) != path, "another seed is another set")
    }

    @Test func imagesHaveStructureNotNoise() {
        // Neighbouring pixels are mostly alike (shapes and gradients), unlike in white noise.
        var total = 0, count = 0
        for index in 0..<16 {
            let image = SampleData.image(index: index, size: 48, seed: 3)
            for y in 0..<image.height {
                for x in 1..<image.width {
                    total += abs(Int(image[x, y].0) - Int(image[x - 1, y].0))
                    count += 1
                }
            }
        }
        #expect(Double(total) / Double(count) < 30, "mean neighbour difference \(Double(total) / Double(count))")
        #expect(SampleData.image(index: 3, size: 48, seed: 3) != SampleData.image(index: 3, size: 48, seed: 4))
    }
}
