import Testing
@testable import Images

/// A smooth colour gradient, easy on JPEG, so decoded values stay close to the source.
private func gradient(width: Int, height: Int) -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 3
            pixels[i] = UInt8(x * 255 / max(1, width - 1))
            pixels[i + 1] = UInt8(y * 255 / max(1, height - 1))
            pixels[i + 2] = 100
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

private func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
}

private func decodeError(_ bytes: [UInt8], maximumPixels: Int = ImageDecoder.defaultMaximumPixels) -> ImageError? {
    do {
        _ = try ImageDecoder(maximumPixels: maximumPixels).decode(bytes, file: "img.JPEG")
        return nil
    } catch {
        return error
    }
}

@Suite struct ImageDecodingTests {
    @Test func rgbJPEGSurvivesEncodeAndDecode() throws {
        let original = gradient(width: 48, height: 32)
        let bytes = try encodeJPEG(original, quality: 95)
        #expect(bytes.starts(with: [0xFF, 0xD8]), "a JPEG starts with the SOI marker")
        let decoded = try decodeImage(bytes)
        #expect(decoded.width == 48 && decoded.height == 32)
        #expect(maxDifference(decoded.pixels, original.pixels) <= 12)
    }

    @Test func pngIsLossless() throws {
        let image = gradient(width: 37, height: 11)
        let bytes = try encodePNG(image)
        #expect(Array(bytes.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        let decoded = try ImageDecoder().decode(bytes, file: "grid.png")
        #expect(decoded.width == 37 && decoded.height == 11)
        #expect(decoded.pixels == image.pixels)
    }

    @Test func grayscaleJPEGDecodesToEqualChannels() throws {
        let width = 40, height = 24
        let gray = (0..<(width * height)).map { UInt8(($0 % width) * 6) }
        let bytes = try encodeJPEG(pixels: gray, width: width, height: height, layout: .gray, quality: 95)
        let decoded = try decodeImage(bytes)
        for i in 0..<(width * height) {
            #expect(decoded.pixels[3 * i] == decoded.pixels[3 * i + 1] && decoded.pixels[3 * i] == decoded.pixels[3 * i + 2])
        }
        let reds = stride(from: 0, to: decoded.pixels.count, by: 3).map { decoded.pixels[$0] }
        #expect(maxDifference(reds, gray) <= 8)
    }

    @Test func adobeCMYKJPEGDecodesToRGB() throws {
        // Stored (inverted) values: 255 means no ink. Left half pure white paper, right half
        // cyan ink (stored C = 0) at half black (stored K = 128): RGB (0, 128, 128).
        let width = 32, height = 16
        var cmyk = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            for x in (width / 2)..<width {
                let i = (y * width + x) * 4
                cmyk[i] = 0
                cmyk[i + 3] = 128
            }
        }
        let bytes = try encodeJPEG(pixels: cmyk, width: width, height: height, layout: .cmyk, quality: 98)
        #expect(hasAdobeMarker(bytes), "libjpeg-turbo marks CMYK output with an Adobe segment")
        let decoded = try decodeImage(bytes)
        let (r0, g0, b0) = decoded[4, 8]
        #expect(r0 >= 245 && g0 >= 245 && b0 >= 245, "paper is white, got \((r0, g0, b0))")
        let (r1, g1, b1) = decoded[28, 8]
        #expect(r1 <= 10 && abs(Int(g1) - 128) <= 10 && abs(Int(b1) - 128) <= 10, "cyan at half black, got \((r1, g1, b1))")
    }

    @Test func cmykConversionFormula() {
        #expect(cmykToRGB([255, 255, 255, 255], inverted: true) == [255, 255, 255])
        #expect(cmykToRGB([0, 0, 0, 0], inverted: false) == [255, 255, 255])
        #expect(cmykToRGB([0, 255, 255, 128], inverted: true) == [0, 128, 128])
        #expect(cmykToRGB([255, 0, 0, 127], inverted: false) == [0, 128, 128])
    }

    @Test func pngVariantsDecodeExactly() throws {
        let width = 5, height = 3
        let rgb = (0..<(width * height * 3)).map { UInt8($0 * 5) }
        // RGB, written by libpng.
        let rgbPNG = try PNGCodec.encode(pixels: rgb, width: width, height: height, format: PNGCodec.colorFlag)
        #expect(try decodeImage(rgbPNG).pixels == rgb)

        // RGBA: alpha is dropped, colour kept even where fully transparent.
        var rgba: [UInt8] = []
        for i in 0..<(width * height) { rgba += rgb[(3 * i)..<(3 * i + 3)] + [UInt8(i * 17 % 256)] }
        let rgbaPNG = try PNGCodec.encode(pixels: rgba, width: width, height: height,
                                          format: PNGCodec.colorFlag | PNGCodec.alphaFlag)
        #expect(try decodeImage(rgbaPNG).pixels == rgb)

        // Gray and gray + alpha.
        let gray = (0..<(width * height)).map { UInt8($0 * 16) }
        let grayRGB = gray.flatMap { [$0, $0, $0] }
        let grayPNG = try PNGCodec.encode(pixels: gray, width: width, height: height, format: 0)
        #expect(try decodeImage(grayPNG).pixels == grayRGB)
        let grayAlpha = gray.flatMap { [$0, UInt8(200)] }
        let grayAlphaPNG = try PNGCodec.encode(pixels: grayAlpha, width: width, height: height, format: PNGCodec.alphaFlag)
        #expect(try decodeImage(grayAlphaPNG).pixels == grayRGB)

        // Palette.
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let indices = (0..<(width * height)).map { UInt8($0 % 4) }
        let palettePNG = try PNGCodec.encode(pixels: indices, width: width, height: height,
                                             format: PNGCodec.colorFlag | PNGCodec.colormapFlag, colormap: palette)
        let expected = indices.flatMap { palette[(Int($0) * 3)..<(Int($0) * 3 + 3)] }
        #expect(try decodeImage(palettePNG).pixels == Array(expected))
    }

    @Test func sixteenBitPNGWithoutGammaKeepsItsLevels() throws {
        // Two RGB pixels of 16-bit samples; 8-bit results are the samples scaled by 255/65535.
        let samples: [UInt16] = [0x0000, 0x1234, 0xFFFF, 0x8000, 0x7FFF, 0xABCD]
        let row = samples.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let bytes = HandBuiltPNG.png(width: 2, height: 1, bitDepth: 16, colorType: 2, rows: [row])
        let decoded = try decodeImage(bytes)
        for (value, sample) in zip(decoded.pixels, samples) {
            let exact = Double(sample) * 255 / 65535
            #expect(abs(Double(value) - exact) <= 0.51, "sample \(sample) became \(value)")
        }
    }

    @Test func pngNamedJPEGIsRecognisedByItsBytes() throws {
        let directory = TemporaryDirectory()
        let rgb = (0..<(4 * 4 * 3)).map { UInt8($0) }
        let path = directory.write(try PNGCodec.encode(pixels: rgb, width: 4, height: 4, format: PNGCodec.colorFlag),
                                   to: "n02105855/n02105855_2933.JPEG")
        #expect(try ImageDecoder().decodeFile(atPath: path).pixels == rgb)
    }

    @Test func emptyGarbageAndOtherFormatsAreTypedErrors() {
        #expect(decodeError([]) == .empty(file: "img.JPEG"))
        if case .notAnImage(let file, let reason)? = decodeError(Array("<html>hello</html>".utf8)) {
            #expect(file == "img.JPEG")
            #expect(reason.contains("3C 68 74 6D"))
        } else {
            Issue.record("HTML must be notAnImage")
        }
        if case .notAnImage(_, let reason)? = decodeError(Array("GIF89a.....".utf8)) {
            #expect(reason.contains("GIF"))
        } else {
            Issue.record("GIF must be notAnImage")
        }
        #expect(decodeError([0xFF, 0xD8, 0xFF, 0xE0, 0x00]) != nil)
        #expect(decodeError(ImageFormat.pngSignature + [0, 0, 0, 13]) != nil)
        #expect(throws: ImageError.self) { try ImageDecoder().decodeFile(atPath: "/nonexistent/x.JPEG") }
    }

    @Test func everyTruncationOfAJPEGIsATypedError() throws {
        let bytes = try encodeJPEG(gradient(width: 24, height: 16), quality: 80)
        let decoder = ImageDecoder()
        var truncatedCount = 0
        for length in 0..<bytes.count {
            do {
                _ = try decoder.decode(Array(bytes[0..<length]), file: "cut.jpg")
                Issue.record("a JPEG cut to \(length) of \(bytes.count) bytes decoded")
            } catch {
                if case .truncated = error { truncatedCount += 1 }
                #expect(error.file == "cut.jpg")
            }
        }
        #expect(truncatedCount == bytes.count - 3, "every cut after the first 3 bytes is reported as truncation")
        #expect(try decoder.decode(bytes).width == 24, "the decoder stays usable after errors")
    }

    @Test func everyTruncationOfAPNGIsATypedError() throws {
        let rgb = (0..<(6 * 6 * 3)).map { UInt8($0 * 7 % 256) }
        let bytes = try PNGCodec.encode(pixels: rgb, width: 6, height: 6, format: PNGCodec.colorFlag)
        // The last 12 bytes are the empty IEND chunk; without it the pixels are still complete.
        let iend = bytes.count - 12
        #expect(Array(bytes[(iend + 4)..<(iend + 8)]) == Array("IEND".utf8))
        for length in 0..<iend {
            #expect(throws: ImageError.self, "cut to \(length)") { try decodeImage(Array(bytes[0..<length])) }
        }
        for length in 8..<iend {
            #expect(throws: ImageError.truncated(file: "<memory>", reason: "libpng: read beyond end of data")) {
                try decodeImage(Array(bytes[0..<length]))
            }
        }
        for length in iend..<bytes.count {
            #expect(try decodeImage(Array(bytes[0..<length])).pixels == rgb)
        }
    }

    @Test func decompressionBombsAreRefusedFromTheHeader() throws {
        // A small JPEG whose frame header claims 60000 x 60000.
        var jpeg = try encodeJPEG(gradient(width: 16, height: 16))
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg[sof + 5] = 0xEA; jpeg[sof + 6] = 0x60  // height 60000
        jpeg[sof + 7] = 0xEA; jpeg[sof + 8] = 0x60  // width 60000
        #expect(decodeError(jpeg) == .tooManyPixels(file: "img.JPEG", width: 60000, height: 60000,
                                                    limit: ImageDecoder.defaultMaximumPixels))
        // A PNG whose header claims 100000 x 100000 with almost no data.
        let png = HandBuiltPNG.png(width: 100_000, height: 100_000, bitDepth: 8, colorType: 2, rows: [[1, 2, 3]])
        #expect(decodeError(png) == .tooManyPixels(file: "img.JPEG", width: 100_000, height: 100_000,
                                                   limit: ImageDecoder.defaultMaximumPixels))
        // A configured limit applies to ordinary images too.
        #expect(decodeError(try encodeJPEG(gradient(width: 20, height: 10)), maximumPixels: 199)
                == .tooManyPixels(file: "img.JPEG", width: 20, height: 10, limit: 199))
    }

    @Test func dctScalingDecodesSmallWhenTheTargetIsSmall() throws {
        #expect(jpegDecodeSize(width: 400, height: 300, shorterSideAtLeast: 64) == (100, 75))
        #expect(jpegDecodeSize(width: 400, height: 300, shorterSideAtLeast: 300) == (400, 300))
        #expect(jpegDecodeSize(width: 400, height: 300, shorterSideAtLeast: 32) == (50, 38))
        #expect(jpegDecodeSize(width: 400, height: 300, shorterSideAtLeast: nil) == (400, 300))
        let original = gradient(width: 400, height: 300)
        let bytes = try encodeJPEG(original, quality: 95)
        let small = try ImageDecoder().decode(bytes, shorterSideAtLeast: 64)
        #expect(small.width == 100 && small.height == 75)
        // Each reduced pixel is close to the average of its 4x4 block in the original.
        let (r, g, b) = small[50, 37]
        #expect(abs(Int(r) - Int(original[201, 149].0)) <= 6 && abs(Int(g) - Int(original[201, 149].1)) <= 6 && abs(Int(b) - 100) <= 6)
    }

    @Test func randomCorruptionsNeverCrash() throws {
        let jpeg = try encodeJPEG(gradient(width: 40, height: 30), quality: 85)
        let rgb = (0..<(12 * 9 * 3)).map { UInt8($0 * 13 % 256) }
        let png = try PNGCodec.encode(pixels: rgb, width: 12, height: 9, format: PNGCodec.colorFlag)
        let decoder = ImageDecoder(maximumPixels: 1 << 20)
        var random = KeyedRandom(key: 23)
        var refused = 0
        for original in [jpeg, png] {
            for _ in 0..<600 {
                var damaged = original
                for _ in 0..<(1 + random.below(3)) {
                    damaged[2 + random.below(damaged.count - 2)] = UInt8(random.below(256))
                }
                do {
                    let image = try decoder.decode(damaged, file: "fuzz")
                    #expect(image.pixels.count == image.width * image.height * 3)
                } catch {
                    refused += 1
                    #expect(error.file == "fuzz")
                }
            }
        }
        #expect(refused > 0)
        #expect(try decoder.decode(jpeg).width == 40, "the decoder is still usable")
    }
}
