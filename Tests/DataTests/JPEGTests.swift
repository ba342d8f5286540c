import Testing
@testable import Data

@Suite struct JPEGTests {
    @Test func smoothImageSurvivesEncodeAndDecode() throws {
        let width = 48, height = 32
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8(x * 255 / (width - 1))
                pixels[i + 1] = UInt8(y * 255 / (height - 1))
                pixels[i + 2] = 100
            }
        }
        let original = RGBImage(width: width, height: height, pixels: pixels)
        let bytes = try encodeJPEG(original, quality: 95)
        #expect(bytes.starts(with: [0xFF, 0xD8]), "a JPEG starts with the SOI marker")
        let decoded = try decodeJPEG(bytes)
        #expect(decoded.width == width && decoded.height == height)
        let maxError = zip(decoded.pixels, original.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(maxError <= 12, "a smooth gradient at quality 95 stays within a few levels; max error \(maxError)")
    }

    @Test func garbageIsATypedError() {
        #expect(throws: JPEGError.self) { try decodeJPEG([0x00, 0x01, 0x02, 0x03]) }
        #expect(throws: JPEGError.self) { try decodeJPEG([]) }
    }
}
