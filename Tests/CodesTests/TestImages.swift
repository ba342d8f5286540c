import Foundation
import Images
import TensorFiles

/// A temporary folder that is removed at the end of a test.
final class TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("scvae-codes-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// A subfolder, created.
    func folder(_ name: String) throws -> String {
        let folder = file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }
}

/// Small test pictures: stripes and blocks whose pattern depends on `index`.
enum TestImages {
    static func picture(_ index: Int, width: Int = 40, height: Int = 36) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let stripe = ((x + index * y) / (2 + index % 3)) % 2 == 0
                let block = (x / 8 + y / 8 + index) % 3
                pixels[(y * width + x) * 3] = stripe ? 220 : 30
                pixels[(y * width + x) * 3 + 1] = UInt8(60 * block + 20)
                pixels[(y * width + x) * 3 + 2] = UInt8((x * 5 + y * 3 + index * 40) % 256)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Writes `count` PNGs named img0.png, img1.png, ... into `folder`; returns their paths.
    @discardableResult
    static func write(_ count: Int, into folder: String) throws -> [String] {
        try (0..<count).map { i in
            let path = (folder as NSString).appendingPathComponent("img\(i).png")
            try BinaryFile.writeAtomically(try encodePNG(picture(i)), to: path)
            return path
        }
    }
}

/// The red, green and blue of pixel (x, y).
func rgb(_ image: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
    let i = (y * image.width + x) * 3
    return Array(image.pixels[i..<(i + 3)])
}
