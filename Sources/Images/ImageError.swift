import TensorFiles
/// Why an image could not be decoded or encoded. Every decoding case names the file (`<memory>`
/// for bytes not read from disk) so that a skipped sample can be reported by name.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// The file has no bytes.
    case empty(file: String)
    /// The bytes are neither JPEG nor PNG; the reason names what they look like.
    case notAnImage(file: String, reason: String)
    /// The header declares more pixels than allowed: a decompression bomb or an absurd image,
    /// refused before any pixel memory is allocated.
    case tooManyPixels(file: String, width: Int, height: Int, limit: Int)
    /// The data ends before the image does.
    case truncated(file: String, reason: String)
    /// The codec refused the data (bad markers, bad chunk, unsupported variant).
    case corrupt(file: String, reason: String)
    /// A codec handle could not be created or encoding failed.
    case codecFailure(reason: String)

    /// The file the error is about, if any.
    public var file: String? {
        switch self {
        case .unreadable(let file, _), .empty(let file), .notAnImage(let file, _), .truncated(let file, _),
             .corrupt(let file, _), .tooManyPixels(let file, _, _, _):
            return file
        case .codecFailure: return nil
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): return "\(file): cannot read: \(reason)"
        case .empty(let file): return "\(file): empty file"
        case .notAnImage(let file, let reason): return "\(file): not an image: \(reason)"
        case .tooManyPixels(let file, let width, let height, let limit):
            return "\(file): \(width)x\(height) exceeds the limit of \(limit) pixels"
        case .truncated(let file, let reason): return "\(file): truncated: \(reason)"
        case .corrupt(let file, let reason): return "\(file): corrupt image: \(reason)"
        case .codecFailure(let reason): return "image codec failure: \(reason)"
        }
    }
}
