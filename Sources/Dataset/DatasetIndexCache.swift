#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// The dataset index cached as a file, so tools and nodes can read the exact list a run used.
///
/// Location: `<cache>/index-<first 16 hex digits of SHA-256 of the absolute root>.txt`, where
/// `<cache>` is the given directory, else `$XDG_CACHE_HOME/scvae`, else `~/.cache/scvae`.
/// Each load re-lists the folder (names and sizes, no file contents) and compares fingerprints;
/// a cache whose fingerprint differs, or that is unreadable, is rewritten.
///
/// File format (UTF-8 text; in paths, backslash, tab and newline are written \\, \t and \n):
///
///     scvae-dataset-index 1
///     root <absolute root>
///     fingerprint <hex>
///     count <n>
///     <size>\t<relative path>        (n lines, index order)
public enum DatasetIndexCache {
    static let header = "scvae-dataset-index 1"

    /// What a load did with the cache file.
    public enum Outcome: Equatable, Sendable {
        /// The cached index matched the folder and was used.
        case reused(file: String)
        /// The cache was missing or stale and has been (re)written.
        case written(file: String)
        /// The cache could not be written; the freshly scanned index is used anyway.
        case unwritable(file: String, reason: String)
    }

    /// `$XDG_CACHE_HOME/scvae`, else `$HOME/.cache/scvae`.
    public static func defaultDirectory() -> String {
        defaultDirectory(xdgCacheHome: getenv("XDG_CACHE_HOME").map { String(cString: $0) },
                         home: getenv("HOME").map { String(cString: $0) })
    }

    /// The rule of `defaultDirectory()` for given environment values (empty counts as unset).
    public static func defaultDirectory(xdgCacheHome: String?, home: String?) -> String {
        if let xdgCacheHome, !xdgCacheHome.isEmpty { return xdgCacheHome + "/scvae" }
        if let home, !home.isEmpty { return home + "/.cache/scvae" }
        return "/tmp/scvae-cache"
    }

    /// The cache file of a dataset root (resolved to an absolute path first).
    public static func file(forRoot absoluteRoot: String, cacheDirectory: String? = nil) -> String {
        let key = SHA256.hex(absoluteRoot.utf8).prefix(16)
        return (cacheDirectory ?? defaultDirectory()) + "/index-\(key).txt"
    }

    /// Scans `root`, reusing the cached index when its fingerprint still matches, and writing the
    /// cache otherwise.
    public static func load(root: String, cacheDirectory: String? = nil) throws(DatasetError) -> (index: DatasetIndex, cache: Outcome) {
        let fresh = try DatasetIndex.scan(root: root)
        let path = file(forRoot: fresh.root, cacheDirectory: cacheDirectory)
        if let cached = try? read(path), cached.root == fresh.root, cached.fingerprint == fresh.fingerprint {
            // The same samples; the fresh scan also knows the names it left out.
            return (fresh, .reused(file: path))
        }
        do {
            try makeDirectories(cacheDirectory ?? defaultDirectory())
            try BinaryFile.writeAtomically(Array(encode(fresh).utf8), to: path)
            return (fresh, .written(file: path))
        } catch {
            return (fresh, .unwritable(file: path, reason: error.description))
        }
    }

    /// Why a cache file was not usable (it is then rebuilt).
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "\(file): invalid index cache: \(reason)" }
    }

    /// Reads a cache file, checking its header, count and fingerprint.
    public static func read(_ path: String) throws(Invalid) -> DatasetIndex {
        let bytes: [UInt8]
        do {
            bytes = try BinaryFile.read(path)
        } catch {
            throw Invalid(file: path, reason: error.description)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Invalid(file: path, reason: "not UTF-8") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard lines.count >= 4, lines[0] == header else { throw Invalid(file: path, reason: "missing '\(header)' header") }
        guard lines[1].hasPrefix("root "), lines[2].hasPrefix("fingerprint "), lines[3].hasPrefix("count "),
              let count = Int(lines[3].dropFirst(6)), count == lines.count - 4 else {
            throw Invalid(file: path, reason: "malformed preamble")
        }
        let root = unescape(lines[1].dropFirst(5))
        let fingerprint = String(lines[2].dropFirst(12))
        var samples: [DatasetSample] = []
        samples.reserveCapacity(count)
        for line in lines[4...] {
            guard let tab = line.firstIndex(of: "\t"), let size = Int(line[..<tab]) else {
                throw Invalid(file: path, reason: "malformed sample line")
            }
            samples.append(DatasetSample(path: unescape(line[line.index(after: tab)...]), size: size))
        }
        let index = DatasetIndex(root: root, samples: samples)
        guard index.fingerprint == fingerprint else { throw Invalid(file: path, reason: "fingerprint does not match its samples") }
        return index
    }

    static func encode(_ index: DatasetIndex) -> String {
        var out = "\(header)\nroot \(escape(index.root))\nfingerprint \(index.fingerprint)\ncount \(index.count)\n"
        for sample in index.samples {
            out += "\(sample.size)\t\(escape(sample.path))\n"
        }
        return out
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    static func unescape(_ text: Substring) -> String {
        var out = ""
        var escaping = false
        for character in text {
            if escaping {
                switch character {
                case "t": out += "\t"
                case "n": out += "\n"
                default: out.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// `mkdir -p` (`FileSystem.makeDirectories`), failing as a `FileError`.
    static func makeDirectories(_ path: String) throws(FileError) {
        do {
            try FileSystem.makeDirectories(path)
        } catch {
            throw .writeFailed(file: error.path, reason: "\(error.call): \(error.reason)")
        }
    }
}
