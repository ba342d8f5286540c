import CTurboJPEG

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: pixel count does not match size")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Errors of JPEG encoding and decoding; each names what went wrong.
public enum JPEGError: Error, Equatable, CustomStringConvertible {
    /// libjpeg-turbo could not create a handle.
    case handleUnavailable
    /// The bytes are not a JPEG libjpeg-turbo can read.
    case decodeFailed(String)
    /// Encoding failed inside libjpeg-turbo.
    case encodeFailed(String)

    public var description: String {
        switch self {
        case .handleUnavailable: return "libjpeg-turbo: could not create a handle"
        case .decodeFailed(let why): return "JPEG decode failed: \(why)"
        case .encodeFailed(let why): return "JPEG encode failed: \(why)"
        }
    }
}

private func turboError(_ handle: tjhandle?) -> String {
    guard let message = tjGetErrorStr2(handle) else { return "unknown error" }
    return String(cString: message)
}

/// Encodes an RGB image as a baseline JPEG with 4:2:0 subsampling.
public func encodeJPEG(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
    guard let handle = tjInitCompress() else { throw JPEGError.handleUnavailable }
    defer { tjDestroy(handle) }
    var buffer: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let status = image.pixels.withUnsafeBufferPointer { pixels in
        tjCompress2(handle, pixels.baseAddress, Int32(image.width), 0, Int32(image.height),
                    Int32(TJPF_RGB.rawValue), &buffer, &size, Int32(TJSAMP_420.rawValue),
                    Int32(quality), 0)
    }
    defer { if let buffer { tjFree(buffer) } }
    guard status == 0, let buffer else { throw JPEGError.encodeFailed(turboError(handle)) }
    return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
}

/// Decodes a JPEG to RGB at full size.
public func decodeJPEG(_ bytes: [UInt8]) throws -> RGBImage {
    guard let handle = tjInitDecompress() else { throw JPEGError.handleUnavailable }
    defer { tjDestroy(handle) }
    var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
    let header = bytes.withUnsafeBufferPointer {
        tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
    }
    guard header == 0, width > 0, height > 0 else { throw JPEGError.decodeFailed(turboError(handle)) }
    var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
    let status = bytes.withUnsafeBufferPointer { source in
        pixels.withUnsafeMutableBufferPointer { target in
            tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress,
                          width, 0, height, Int32(TJPF_RGB.rawValue), 0)
        }
    }
    guard status == 0 else { throw JPEGError.decodeFailed(turboError(handle)) }
    return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
}
