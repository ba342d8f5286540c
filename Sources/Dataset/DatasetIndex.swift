import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// The list of samples of an image folder in a stable order, identical on every node that sees
/// the same files.
///
/// Layouts: ILSVRC-2012 train (ROOT/<wnid>/<name>.JPEG), or any folder of images, searched
/// recursively. Files whose names end in .jpg, .jpeg or .png (any case) are samples; names
/// starting with "." are skipped (hidden files, temporary folders). Samples are sorted by the
/// bytes of their UTF-8 relative path (as `LC_ALL=C sort` does). A sample's class is the first
/// folder of its relative path (the wnid), none for files directly in ROOT.
///
/// Names that are not valid UTF-8 are left out and listed in `nonUTF8Names`, for the caller to
/// warn about: a sample's path is a Swift `String` from the index to the decoder and in the
/// index cache, and a `String` cannot hold such bytes, so the file could not be opened again.
///
/// Fingerprint: SHA-256, in lowercase hex, of the lines "<relative path>\t<size in bytes>\n" of
/// all samples in order. From a shell, for the same set of files:
///
///     cd ROOT && find -L . -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) \
///         -not -path '*/.*' -printf '%P\t%s\n' | LC_ALL=C sort | sha256sum
///
/// (when every name is UTF-8: the index leaves out names that are not, as said above).
public struct DatasetIndex: Equatable, Sendable {
    /// The root folder, absolute and with symbolic links resolved.
    public let root: String
    /// Samples in index order.
    public let samples: [DatasetSample]
    /// See the type's documentation.
    public let fingerprint: String
    /// Relative paths of the entries left out because their names are not valid UTF-8 (each
    /// invalid byte shown as `\xNN`), sorted; a folder stands for everything below it. Not part
    /// of the index's identity (`==`, fingerprint, cache file).
    public let nonUTF8Names: [String]

    public var count: Int { samples.count }

    /// Sorted, distinct class folder names (`DatasetSample.className` of the samples).
    public var classNames: [String] {
        var names: [String] = []
        for sample in samples {
            if let name = sample.className, names.last != name { names.append(name) }
        }
        return names
    }

    /// The absolute path of sample `index`.
    public func path(of index: Int) -> String {
        root + "/" + samples[index].path
    }

    init(root: String, samples: [DatasetSample], nonUTF8Names: [String] = []) {
        self.root = root
        self.samples = samples
        self.fingerprint = DatasetIndex.fingerprint(of: samples)
        self.nonUTF8Names = nonUTF8Names
    }

    public static func == (a: DatasetIndex, b: DatasetIndex) -> Bool {
        a.root == b.root && a.fingerprint == b.fingerprint && a.samples == b.samples
    }

    /// The documented fingerprint of samples in order.
    public static func fingerprint(of samples: [DatasetSample]) -> String {
        var hasher = SHA256()
        for sample in samples {
            hasher.update(sample.path)
            hasher.update("\t\(sample.size)\n")
        }
        return SHA256.hexString(hasher.finalize())
    }
}

/// One image file of a dataset.
public struct DatasetSample: Equatable, Hashable, Sendable {
    /// Path relative to the dataset root, "/"-separated.
    public let path: String
    /// File size in bytes.
    public let size: Int

    public init(path: String, size: Int) {
        self.path = path
        self.size = size
    }

    /// The first folder of the relative path (the ImageNet wnid), nil for a file in the root.
    public var className: String? {
        guard let slash = path.firstIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}

/// Why a dataset folder could not be indexed. Each names the path and says what to do.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    /// Nothing exists at the path.
    case notFound(path: String)
    /// The path is a file (or a device...), not a folder.
    case notADirectory(path: String)
    /// A folder could not be listed.
    case unreadableDirectory(path: String, reason: String)
    /// An entry of a listed folder could not be examined (stat failed for another reason than
    /// a dangling link).
    case unreadableEntry(path: String, reason: String)
    /// The folder holds no image files.
    case noImages(root: String)

    public var description: String {
        switch self {
        case .notFound(let path):
            return "\(path) does not exist: give the folder that holds the images"
        case .notADirectory(let path):
            return "\(path) is a file, not a folder: give the folder that holds the images (ROOT/<class>/<file>, or any folder of images)"
        case .unreadableDirectory(let path, let reason):
            return "cannot list the folder \(path): \(reason); make it readable (chmod) or move it out of the dataset"
        case .unreadableEntry(let path, let reason):
            return "cannot examine \(path): \(reason); make it readable (chmod) or move it out of the dataset"
        case .noImages(let root):
            return "\(root) holds no .jpg, .jpeg or .png files (searched recursively; names starting with \".\" are skipped): give the folder that holds the images"
        }
    }
}

extension DatasetIndex {
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Whether a file name has one of the image extensions (any case).
    public static func isImageName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// The image files directly in `folder` (not below it), sorted by name.
    public static func imageNames(inFolder folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter(isImageName).sorted()
    }

    /// Lists `root` (names and sizes only; no file is opened) and builds the index.
    public static func scan(root: String) throws(DatasetError) -> DatasetIndex {
        guard let resolved = realpath(root, nil) else {
            let number = errno
            if number == ENOENT || number == ENOTDIR { throw .notFound(path: root) }
            throw .unreadableDirectory(path: root, reason: String(cString: strerror(number)))
        }
        let absolute = String(cString: resolved)
        free(resolved)
        var status = stat()
        guard stat(absolute, &status) == 0 else {
            throw .unreadableDirectory(path: root, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFDIR else { throw .notADirectory(path: root) }

        var samples: [DatasetSample] = []
        var nonUTF8Names: [String] = []
        var pending: [String] = [""]  // relative folders still to list
        var visited: Set<[UInt64]> = [[UInt64(status.st_dev), UInt64(status.st_ino)]]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? absolute : absolute + "/" + relative
            guard let directory = opendir(folder) else {
                throw .unreadableDirectory(path: folder, reason: String(cString: strerror(errno)))
            }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
                if bytes.first == UInt8(ascii: ".") { continue }
                // stat by the name's bytes: a name that is not UTF-8 is still examined.
                var child = stat()
                let failure: Int32 = (Array(folder.utf8) + [UInt8(ascii: "/")] + bytes + [0]).withUnsafeBufferPointer { path in
                    path.withMemoryRebound(to: CChar.self) { stat($0.baseAddress!, &child) == 0 ? 0 : errno }
                }
                let found = failure == 0
                let kind = child.st_mode & S_IFMT
                guard let name = String(validating: bytes, as: UTF8.self) else {
                    let shown = escapedName(bytes)
                    if found && (kind == S_IFDIR || (kind == S_IFREG && isImageName(shown))) {
                        nonUTF8Names.append(relative.isEmpty ? shown : relative + "/" + shown)
                    }
                    continue
                }
                let childRelative = relative.isEmpty ? name : relative + "/" + name
                guard found else {
                    if failure == ENOENT || failure == ELOOP { continue }  // a dangling link, or a loop of links
                    throw .unreadableEntry(path: absolute + "/" + childRelative, reason: String(cString: strerror(failure)))
                }
                switch kind {
                case S_IFDIR:
                    // Folders reached twice through links are listed once.
                    if visited.insert([UInt64(child.st_dev), UInt64(child.st_ino)]).inserted {
                        pending.append(childRelative)
                    }
                case S_IFREG where isImageName(name):
                    samples.append(DatasetSample(path: childRelative, size: Int(child.st_size)))
                default:
                    continue
                }
            }
        }
        guard !samples.isEmpty else { throw .noImages(root: root) }
        samples.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        return DatasetIndex(root: absolute, samples: samples, nonUTF8Names: nonUTF8Names.sorted())
    }

    /// A name's bytes as text, each byte that is not part of valid UTF-8 shown as `\xNN`.
    static func escapedName(_ bytes: [UInt8]) -> String {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        var shown = ""
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                shown.unicodeScalars.append(Unicode.UTF8.decode(encoded))
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<(offset + length)] {
                    shown += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
                }
                offset += length
            case .emptyInput:
                return shown
            }
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
