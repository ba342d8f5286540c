import TensorFiles
/// Image container formats the pipeline decodes, recognised by their leading bytes, never by the
/// file name (ImageNet has a PNG named .JPEG).
enum ImageFormat: Equatable {
    case jpeg, png

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    init?(sniffing bytes: [UInt8]) {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF {
            self = .jpeg
        } else if bytes.starts(with: ImageFormat.pngSignature) {
            self = .png
        } else {
            return nil
        }
    }

    /// What the leading bytes of an unrecognised file look like, for the error message.
    static func describeUnknown(_ bytes: [UInt8]) -> String {
        if bytes.starts(with: Array("GIF8".utf8)) { return "a GIF file, which is not supported" }
        if bytes.starts(with: Array("BM".utf8)) { return "a BMP file, which is not supported" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), bytes[8..<12].elementsEqual("WEBP".utf8) {
            return "a WebP file, which is not supported"
        }
        let hex = bytes.prefix(8).map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return digits.count == 1 ? "0" + digits : digits
        }
        return "unknown format, starts with " + hex.joined(separator: " ")
    }
}

/// Decodes JPEG and PNG files to 8-bit RGB, refusing anything else with an `ImageError` that
/// names the file. Holds codec handles for reuse, so it is not thread-safe: use one per thread.
public final class ImageDecoder {
    /// The default pixel limit, 64 Mi pixels (e.g. 8192 x 8192): far above any ImageNet photo,
    /// far below what would exhaust a worker's memory (3 bytes per pixel plus buffers).
    public static let defaultMaximumPixels = 64 * 1024 * 1024

    /// Images whose header declares more pixels than this are refused before decoding.
    public let maximumPixels: Int
    private var jpeg: JPEGDecoder?

    public init(maximumPixels: Int = ImageDecoder.defaultMaximumPixels) {
        self.maximumPixels = maximumPixels
    }

    /// Decodes `bytes`. With `shorterSideAtLeast`, a JPEG is decoded at the smallest DCT reduction
    /// (1/2, 1/4 or 1/8) whose shorter side still reaches that many pixels, which is much faster
    /// than decoding the full image when the target is small; PNGs are always decoded at full size.
    public func decode(_ bytes: [UInt8], file: String = "<memory>", shorterSideAtLeast target: Int? = nil) throws(ImageError) -> RGBImage {
        guard !bytes.isEmpty else { throw .empty(file: file) }
        switch ImageFormat(sniffing: bytes) {
        case .jpeg:
            if jpeg == nil { jpeg = try JPEGDecoder() }
            return try jpeg!.decode(bytes, file: file, maximumPixels: maximumPixels, shorterSideAtLeast: target)
        case .png:
            return try PNGCodec.decode(bytes, file: file, maximumPixels: maximumPixels)
        case nil:
            throw .notAnImage(file: file, reason: ImageFormat.describeUnknown(bytes))
        }
    }

    /// Reads and decodes the file at `path`; errors name `path`.
    public func decodeFile(atPath path: String, shorterSideAtLeast target: Int? = nil) throws(ImageError) -> RGBImage {
        let bytes: [UInt8]
        do {
            bytes = try BinaryFile.read(path)
        } catch {
            throw .unreadable(file: path, reason: error.description)
        }
        return try decode(bytes, file: path, shorterSideAtLeast: target)
    }
}

/// Decodes a JPEG or PNG to RGB at full size with a temporary decoder.
public func decodeImage(_ bytes: [UInt8], file: String = "<memory>",
                        maximumPixels: Int = ImageDecoder.defaultMaximumPixels) throws(ImageError) -> RGBImage {
    try ImageDecoder(maximumPixels: maximumPixels).decode(bytes, file: file)
}

/// Decodes a JPEG (or any supported image) to RGB at full size; kept for existing callers.
public func decodeJPEG(_ bytes: [UInt8]) throws(ImageError) -> RGBImage {
    try decodeImage(bytes)
}
