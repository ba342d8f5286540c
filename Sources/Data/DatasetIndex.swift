import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The list of samples of an image folder in a stable order, identical on every node that sees
/// the same files.
///
/// Layouts: ILSVRC-2012 train (ROOT/<wnid>/<name>.JPEG), or any folder of images, searched
/// recursively. Files whose names end in .jpg, .jpeg or .png (any case) are samples; names
/// starting with "." are skipped (hidden files, temporary folders). Samples are sorted by the
/// bytes of their UTF-8 relative path (as `LC_ALL=C sort` does). A sample's class is the first
/// folder of its relative path (the wnid), none for files directly in ROOT.
///
/// Fingerprint: SHA-256, in lowercase hex, of the lines "<relative path>\t<size in bytes>\n" of
/// all samples in order. From a shell, for the same set of files:
///
///     cd ROOT && find -L . -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) \
///         -not -path '*/.*' -printf '%P\t%s\n' | LC_ALL=C sort | sha256sum
public struct DatasetIndex: Equatable, Sendable {
    /// The root folder, absolute and with symbolic links resolved.
    public let root: String
    /// Samples in index order.
    public let samples: [DatasetSample]
    /// See the type's documentation.
    public let fingerprint: String

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

    init(root: String, samples: [DatasetSample]) {
        self.root = root
        self.samples = samples
        self.fingerprint = DatasetIndex.fingerprint(of: samples)
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

/// Why a dataset folder could not be indexed.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    /// The root does not exist or is not a directory.
    case notADirectory(path: String)
    /// A folder could not be listed.
    case unreadableDirectory(path: String, reason: String)
    /// The folder holds no image files.
    case noImages(root: String)

    public var description: String {
        switch self {
        case .notADirectory(let path): return "\(path): not a directory"
        case .unreadableDirectory(let path, let reason): return "\(path): cannot list: \(reason)"
        case .noImages(let root): return "\(root): no .jpg, .jpeg or .png files found"
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
        guard let resolved = realpath(root, nil) else { throw .notADirectory(path: root) }
        let absolute = String(cString: resolved)
        free(resolved)
        var status = stat()
        guard stat(absolute, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
            throw .notADirectory(path: root)
        }

        var samples: [DatasetSample] = []
        var pending: [String] = [""]  // relative folders still to list
        var visited: Set<[UInt64]> = [[UInt64(status.st_dev), UInt64(status.st_ino)]]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? absolute : absolute + "/" + relative
            guard let directory = opendir(folder) else {
                throw .unreadableDirectory(path: folder, reason: String(cString: strerror(errno)))
            }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasPrefix(".") { continue }
                let childRelative = relative.isEmpty ? name : relative + "/" + name
                var child = stat()
                guard stat(absolute + "/" + childRelative, &child) == 0 else { continue }  // dangling link
                switch child.st_mode & S_IFMT {
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
        return DatasetIndex(root: absolute, samples: samples)
    }
}
