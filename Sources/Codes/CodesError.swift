/// Why a tool on the codes refused its input; each case names the file a person has to look at.
public enum CodesError: Error, Equatable, CustomStringConvertible {
    /// The weights file does not fit the configuration (missing or mis-shaped tensor, or its
    /// metadata names another configuration), or cannot be read.
    case weights(path: String, reason: String)
    /// An image could not be read or decoded.
    case image(path: String, reason: String)
    /// The input names no image (an empty folder, or a file that is not .jpg/.jpeg/.png).
    case noImages(path: String)
    /// A codes file is malformed or not a codes file.
    case codesFile(path: String, reason: String)
    /// A codes file was made by other weights or another configuration than the ones given.
    case codesMismatch(path: String, reason: String)
    /// A mask file is unreadable or does not fit its image.
    case mask(path: String, reason: String)
    /// An option value that only the data can rule out (an atom beyond K, a position off the grid).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .weights(path, reason): return "weights \(path): \(reason)"
        case let .image(path, reason): return "image \(path): \(reason)"
        case let .noImages(path): return "\(path): no .jpg, .jpeg or .png image to read"
        case let .codesFile(path, reason): return "codes file \(path): \(reason)"
        case let .codesMismatch(path, reason): return "codes file \(path) does not fit: \(reason)"
        case let .mask(path, reason): return "mask \(path): \(reason)"
        case let .invalidArgument(reason): return reason
        }
    }
}
