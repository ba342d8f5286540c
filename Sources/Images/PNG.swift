import CPNG
import TensorFiles

/// PNG through libpng's simplified API (png_image), which reports errors through its return value
/// instead of longjmp, so that a corrupt file cannot unwind through Swift frames.
enum PNGCodec {
    // png_image format bits (png.h PNG_FORMAT_FLAG_*).
    static let alphaFlag: UInt32 = 0x01
    static let colorFlag: UInt32 = 0x02
    static let linearFlag: UInt32 = 0x04
    static let colormapFlag: UInt32 = 0x08
    /// png.h PNG_IMAGE_FLAG_16BIT_sRGB: 16-bit data without gamma information is sRGB, not linear.
    static let sixteenBitIsSRGB: UInt32 = 0x04

    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Decodes any PNG (1-16 bits, gray, palette, with or without alpha or tRNS) to 8-bit RGB.
    /// Alpha is dropped, not composited, as `PIL.Image.convert("RGB")` does; 16-bit samples
    /// without gamma information are taken as sRGB and rounded to 8 bits.
    static func decode(_ bytes: [UInt8], file: String, maximumPixels: Int) throws(ImageError) -> RGBImage {
        // libpng keeps the memory pointer between begin and finish: both run inside one borrow.
        try bytes.withUnsafeBytes { raw in
            decode(raw, file: file, maximumPixels: maximumPixels)
        }.get()
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, file: String, maximumPixels: Int) -> Result<RGBImage, ImageError> {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
            return .failure(failure(message(of: &image), file: file))
        }
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0 else { return .failure(.corrupt(file: file, reason: "zero width or height")) }
        guard width * height <= maximumPixels else {
            return .failure(.tooManyPixels(file: file, width: width, height: height, limit: maximumPixels))
        }
        image.format = colorFlag | alphaFlag
        image.flags |= sixteenBitIsSRGB
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let finished = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { return .failure(failure(message(of: &image), file: file)) }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            rgb[3 * i] = rgba[4 * i]
            rgb[3 * i + 1] = rgba[4 * i + 1]
            rgb[3 * i + 2] = rgba[4 * i + 2]
        }
        return .success(RGBImage(width: width, height: height, pixels: rgb))
    }

    private static func failure(_ message: String, file: String) -> ImageError {
        let lowered = message.lowercased()
        if lowered.contains("beyond end") || lowered.contains("eof") || lowered.contains("out of data") || lowered.contains("not enough")
            || lowered.contains("truncat") || lowered.contains("read error") {
            return .truncated(file: file, reason: "libpng: \(message)")
        }
        return .corrupt(file: file, reason: "libpng: \(message)")
    }

    /// Encodes 8-bit samples with libpng: `format` is a png_image format (channels from the
    /// colour and alpha bits); with the colormap bit, `pixels` are indices into `colormap` (RGB).
    /// Used by tests and tools to produce PNG variants.
    static func encode(pixels: [UInt8], width: Int, height: Int, format: UInt32,
                       colormap: [UInt8] = []) throws(ImageError) -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        image.colormap_entries = UInt32(colormap.count / 3)
        defer { png_image_free(&image) }
        var size = 0
        let probed = pixels.withUnsafeBytes { source in
            colormap.withUnsafeBytes { map in
                png_image_write_to_memory(&image, nil, &size, 0, source.baseAddress, 0,
                                          colormap.isEmpty ? nil : map.baseAddress)
            }
        }
        guard probed != 0 || size > 0 else { throw .codecFailure(reason: "PNG encoding: \(message(of: &image))") }
        var out = [UInt8](repeating: 0, count: size)
        let written = pixels.withUnsafeBytes { source in
            colormap.withUnsafeBytes { map in
                out.withUnsafeMutableBytes { target in
                    png_image_write_to_memory(&image, target.baseAddress, &size, 0, source.baseAddress, 0,
                                              colormap.isEmpty ? nil : map.baseAddress)
                }
            }
        }
        guard written != 0 else { throw .codecFailure(reason: "PNG encoding: \(message(of: &image))") }
        return Array(out[0..<size])
    }
}

/// Encodes an RGB image as an 8-bit PNG (lossless: the pictures scvae writes for people and for
/// TensorBoard).
public func encodePNG(_ image: RGBImage) throws(ImageError) -> [UInt8] {
    try PNGCodec.encode(pixels: image.pixels, width: image.width, height: image.height, format: PNGCodec.colorFlag)
}
