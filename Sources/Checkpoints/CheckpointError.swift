import TensorFiles
/// Why a checkpoint could not be read, verified or written. Every case names the file or
/// directory at fault, so a warning or an error line tells a person where to look.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// A file or directory the checkpoint needs does not exist.
    case missingFile(path: String)
    /// The file exists but could not be read (permission, I/O error, not a regular file).
    case unreadable(path: String, reason: String)
    /// A safetensors file is truncated or malformed (the reason is the codec's).
    case corruptFile(path: String, reason: String)
    /// The "crc32c" metadata of a safetensors file is absent, malformed or does not list exactly
    /// the file's tensors.
    case badChecksumList(path: String, reason: String)
    /// A tensor's bytes do not have the CRC32C stored for them.
    case checksumMismatch(path: String, tensor: String, expected: UInt32, found: UInt32)
    /// state.json is not JSON of the expected form, or holds an impossible value.
    case malformedState(path: String, reason: String)
    /// state.json was written by a format this build does not read.
    case unsupportedFormatVersion(path: String, version: Int)
    /// Two parts of one checkpoint disagree (a file's metadata and state.json, or the directory
    /// name and the step), as when files of different checkpoints were mixed.
    case inconsistent(path: String, reason: String)
    /// The optimizer tensors are not the "m." and "v." moments of exactly the model tensors.
    case optimizerMismatch(path: String, reason: String)
    /// The checkpoint handed to `write` is not well-formed; nothing was written.
    case invalidCheckpoint(reason: String)
    /// Writing failed (disk full, permission, ...); the temporary was removed and every earlier
    /// checkpoint is untouched.
    case writeFailed(path: String, reason: String)
    /// The directory holds a checkpoint of another model configuration, which writing (and its
    /// pruning) would silently replace.
    case configMismatch(path: String, expected: String, found: String)
    /// The new checkpoint was written, but removing an old one beyond `keep` failed.
    case pruneFailed(path: String, reason: String)
    /// The path is neither a checkpoint directory nor a directory of checkpoints.
    case notACheckpoint(path: String)

    public var description: String {
        switch self {
        case .missingFile(let path): return "\(path): missing"
        case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
        case .corruptFile(let path, let reason): return "\(path): corrupt or truncated: \(reason)"
        case .badChecksumList(let path, let reason): return "\(path): bad checksum list: \(reason)"
        case .checksumMismatch(let path, let tensor, let expected, let found):
            return "\(path): tensor '\(tensor)' fails its checksum: stored crc32c \(hex8(expected)), data has \(hex8(found))"
        case .malformedState(let path, let reason): return "\(path): malformed: \(reason)"
        case .unsupportedFormatVersion(let path, let version):
            return "\(path): format version \(version) is not supported (this build reads version \(CheckpointState.currentFormatVersion))"
        case .inconsistent(let path, let reason): return "\(path): inconsistent checkpoint: \(reason)"
        case .optimizerMismatch(let path, let reason): return "\(path): optimizer state does not match the model: \(reason)"
        case .invalidCheckpoint(let reason): return "invalid checkpoint, not written: \(reason)"
        case .writeFailed(let path, let reason): return "\(path): checkpoint write failed: \(reason)"
        case .configMismatch(let path, let expected, let found):
            return "\(path): holds a checkpoint of configuration '\(found)', not '\(expected)'; use another checkpoint directory"
        case .pruneFailed(let path, let reason): return "\(path): checkpoint written, but removing this old one failed: \(reason)"
        case .notACheckpoint(let path): return "\(path): neither a checkpoint (step-NNNNNNNN) nor a directory of checkpoints"
        }
    }
}

/// A CRC32C as the 8 lower-case hex digits the checksum metadata uses.
func hex8(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
