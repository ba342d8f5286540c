import CTurboJPEG
import TensorFiles

/// The DCT reductions used, smallest first: those of libjpeg-turbo's scaling factors with
/// numerator 1 (1/8, 1/4, 1/2, 1/1). The others (3/4, 5/8, ...) use generic scaled IDCTs that
/// measured slower here than decoding at full size.
private let jpegReductions: [(num: Int, denom: Int)] = {
    var count: Int32 = 0
    guard let factors = tjGetScalingFactors(&count) else { return [(1, 1)] }
    return (0..<Int(count))
        .map { (num: Int(factors[$0].num), denom: Int(factors[$0].denom)) }
        .filter { $0.num == 1 }
        .sorted { $0.denom > $1.denom }
}()

/// libjpeg-turbo's rounding of a dimension scaled by num/denom (its TJSCALED macro).
private func scaled(_ dimension: Int, _ factor: (num: Int, denom: Int)) -> Int {
    (dimension * factor.num + factor.denom - 1) / factor.denom
}

/// The size to decode a `width` x `height` JPEG at: the smallest DCT reduction whose shorter side
/// is still at least `target` (full size when no reduction qualifies or no target is given).
func jpegDecodeSize(width: Int, height: Int, shorterSideAtLeast target: Int?) -> (width: Int, height: Int) {
    guard let target, target > 0 else { return (width, height) }
    for factor in jpegReductions where min(scaled(width, factor), scaled(height, factor)) >= target {
        return (scaled(width, factor), scaled(height, factor))
    }
    return (width, height)
}

private func turboMessage(_ handle: tjhandle?) -> String {
    guard let message = tjGetErrorStr2(handle) else { return "unknown error" }
    return String(cString: message)
}

/// Decodes JPEGs (YCbCr, grayscale, CMYK and YCCK) to RGB with one reusable libjpeg-turbo handle.
/// A handle is not thread-safe: use one decoder per thread.
final class JPEGDecoder {
    private var handle: tjhandle

    init() throws(ImageError) {
        guard let handle = tjInitDecompress() else { throw .codecFailure(reason: "libjpeg-turbo: cannot create a decompressor") }
        self.handle = handle
    }

    deinit { tjDestroy(handle) }

    /// Decodes, replacing the handle after a failure: libjpeg-turbo can leave state behind after
    /// an error that makes the next, valid, file fail.
    func decode(_ bytes: [UInt8], file: String, maximumPixels: Int, shorterSideAtLeast target: Int?) throws(ImageError) -> RGBImage {
        do {
            return try decodeWithCurrentHandle(bytes, file: file, maximumPixels: maximumPixels, shorterSideAtLeast: target)
        } catch {
            if let fresh = tjInitDecompress() {
                tjDestroy(handle)
                handle = fresh
            }
            throw error
        }
    }

    private func decodeWithCurrentHandle(_ bytes: [UInt8], file: String, maximumPixels: Int,
                                         shorterSideAtLeast target: Int?) throws(ImageError) -> RGBImage {
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let headerStatus = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        guard headerStatus == 0, width > 0, height > 0 else { throw failure(bytes, file: file) }
        guard Int(width) * Int(height) <= maximumPixels else {
            throw .tooManyPixels(file: file, width: Int(width), height: Int(height), limit: maximumPixels)
        }
        let size = jpegDecodeSize(width: Int(width), height: Int(height), shorterSideAtLeast: target)
        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let channels = isCMYK ? 4 : 3
        let format = isCMYK ? TJPF_CMYK : TJPF_RGB
        var pixels = [UInt8](repeating: 0, count: size.width * size.height * channels)
        let status = bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { target in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress,
                              Int32(size.width), 0, Int32(size.height), Int32(format.rawValue), TJFLAG_LIMITSCANS)
            }
        }
        if status != 0 {
            // Warnings (extraneous bytes, corrupt data the decoder recovered from) leave a usable
            // image, as other decoders accept them; running out of data does not.
            let message = turboMessage(handle)
            let isWarning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
            if !isWarning || message.contains("Premature end") { throw failure(bytes, file: file, message: message) }
        }
        if isCMYK {
            pixels = cmykToRGB(pixels, inverted: hasAdobeMarker(bytes))
        }
        return RGBImage(width: size.width, height: size.height, pixels: pixels)
    }

    /// A file that fails and lacks the end-of-image marker was cut short, whatever part of the
    /// structure libjpeg-turbo tripped over first.
    private func failure(_ bytes: [UInt8], file: String, message: String? = nil) -> ImageError {
        let message = message ?? turboMessage(handle)
        let endsWithEOI = bytes.count >= 2 && bytes[bytes.count - 2] == 0xFF && bytes[bytes.count - 1] == 0xD9
        if message.contains("Premature end") || !endsWithEOI { return .truncated(file: file, reason: message) }
        return .corrupt(file: file, reason: message)
    }
}

/// RGB from 8-bit CMYK pixels by the usual naive formula R = (1 - C)(1 - K) (no colour
/// management). Adobe applications store CMYK inverted (0 = full ink), so there the stored values
/// already are 1 - C and 1 - K.
func cmykToRGB(_ cmyk: [UInt8], inverted: Bool) -> [UInt8] {
    let count = cmyk.count / 4
    var rgb = [UInt8](repeating: 0, count: count * 3)
    for i in 0..<count {
        let flip = inverted ? 0 : 255
        let white = (flip ^ Int(cmyk[4 * i + 3]))  // 255 - K, or the stored value if inverted
        for c in 0..<3 {
            let paper = flip ^ Int(cmyk[4 * i + c])
            rgb[3 * i + c] = UInt8((paper * white + 127) / 255)
        }
    }
    return rgb
}

/// Whether the JPEG carries an Adobe APP14 segment, which marks its CMYK as stored inverted.
/// Walks the marker segments before the first scan; malformed structure simply ends the walk.
func hasAdobeMarker(_ bytes: [UInt8]) -> Bool {
    var i = 2  // after SOI
    while i + 4 <= bytes.count {
        guard bytes[i] == 0xFF else { return false }
        let marker = bytes[i + 1]
        if marker == 0xFF { i += 1; continue }  // fill byte
        if marker == 0xDA || marker == 0xD9 { return false }  // start of scan or end of image
        if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }  // no length field
        let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        guard length >= 2 else { return false }
        if marker == 0xEE, length >= 7, i + 9 <= bytes.count, bytes[(i + 4)..<(i + 9)].elementsEqual("Adobe".utf8) {
            return true
        }
        i += 2 + length
    }
    return false
}

/// Pixel layouts the JPEG encoder accepts; gray and CMYK exist to produce the variants real
/// datasets contain (CMYK is written with an Adobe marker, so its values count as inverted).
enum JPEGSourceLayout {
    case rgb, gray, cmyk

    var pixelFormat: TJPF {
        switch self {
        case .rgb: return TJPF_RGB
        case .gray: return TJPF_GRAY
        case .cmyk: return TJPF_CMYK
        }
    }

    var subsampling: TJSAMP {
        switch self {
        case .rgb, .cmyk: return TJSAMP_420
        case .gray: return TJSAMP_GRAY
        }
    }

    var channels: Int {
        switch self {
        case .rgb: return 3
        case .gray: return 1
        case .cmyk: return 4
        }
    }
}

/// Encodes interleaved pixels as a baseline JPEG (accurate DCT, so output is reproducible).
func encodeJPEG(pixels: [UInt8], width: Int, height: Int, layout: JPEGSourceLayout,
                quality: Int) throws(ImageError) -> [UInt8] {
    precondition(pixels.count == width * height * layout.channels, "encodeJPEG: pixel count does not match size")
    guard let handle = tjInitCompress() else { throw .codecFailure(reason: "libjpeg-turbo: cannot create a compressor") }
    defer { tjDestroy(handle) }
    var buffer: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let status = pixels.withUnsafeBufferPointer { source in
        tjCompress2(handle, source.baseAddress, Int32(width), 0, Int32(height), Int32(layout.pixelFormat.rawValue),
                    &buffer, &size, Int32(layout.subsampling.rawValue), Int32(quality), TJFLAG_ACCURATEDCT)
    }
    defer { if let buffer { tjFree(buffer) } }
    guard status == 0, let buffer else { throw .codecFailure(reason: "JPEG encoding: \(turboMessage(handle))") }
    return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
}

/// Encodes an RGB image as a baseline JPEG with 4:2:0 chroma subsampling.
public func encodeJPEG(_ image: RGBImage, quality: Int = 90) throws(ImageError) -> [UInt8] {
    try encodeJPEG(pixels: image.pixels, width: image.width, height: image.height, layout: .rgb, quality: quality)
}
