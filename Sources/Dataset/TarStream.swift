#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// Reading tar archives front to back with bounded memory, as `scvae pack` reads
/// `ILSVRC2012_img_train.tar` (an archive of archives) without extracting it.
///
/// Headers understood (the layout is in Tar.swift): POSIX ustar, whose `prefix` field (bytes
/// 345..<500) is joined to the name only when the magic is "ustar\0" (GNU tar's "ustar  \0"
/// headers keep other fields there); GNU long names (typeflag 'L': the data is the next member's
/// name); pax extended headers (typeflag 'x': `path` and `size` records override the next
/// member's; 'g' global headers are skipped); numbers in octal or, when the first byte has its
/// high bit set, GNU base-256 (big-endian). The checksum is accepted as the unsigned byte sum (the
/// standard) or the signed one (some old writers). The archive ends at the first zero block; a
/// stream that ends before one is `truncated`.

/// Why a tar stream could not be read. `archive` names it as the user knows it
/// (`train.tar`, or `train.tar:n01440764.tar` for an archive inside another); offsets count from
/// the start of that archive.
public enum TarStreamError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or examined.
    case cannotOpen(path: String, reason: String)
    /// A read or seek failed.
    case readFailed(path: String, reason: String)
    /// The archive ends inside a header or a member's data, or before its end-of-archive block.
    case truncated(archive: String, offset: Int, reason: String)
    /// A header is not a tar header (bad checksum, a size that is not a number, a bad pax record).
    case badHeader(archive: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .readFailed(path, reason): return "\(path): read failed: \(reason)"
        case let .truncated(archive, offset, reason):
            return "\(archive): truncated at byte \(offset): \(reason) (an interrupted download or copy? compare its size with the original)"
        case let .badHeader(archive, offset, reason):
            return "\(archive): not a valid tar header at byte \(offset): \(reason)"
        }
    }
}

/// Bytes read front to back.
protocol ByteStream: AnyObject {
    /// Up to `count` bytes; fewer only where the stream ends.
    func read(_ count: Int) throws(TarStreamError) -> [UInt8]
    /// Skips up to `count` bytes and returns how many were skipped; fewer only where it ends.
    func skip(_ count: Int) throws(TarStreamError) -> Int
}

/// A file read through a 1 MiB buffer; skips beyond the buffer are seeks.
final class BufferedFileReader: ByteStream {
    let path: String
    /// Bytes of the file when it was opened.
    let size: Int
    private let descriptor: Int32
    private var buffer: [UInt8]
    private var bufferStart = 0  // file offset of buffer[0]
    private var filled = 0
    private var cursor = 0  // index in buffer of the next byte

    init(path: String, bufferBytes: Int = 1 << 20) throws(TarStreamError) {
        let descriptor = openForReading(path)
        guard descriptor >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw .cannotOpen(path: path, reason: "not a regular file")
        }
        self.path = path
        self.size = Int(status.st_size)
        self.descriptor = descriptor
        self.buffer = [UInt8](repeating: 0, count: bufferBytes)
    }

    deinit { close(descriptor) }

    /// File offset of the next byte `read` returns.
    var position: Int { bufferStart + cursor }

    /// Moves to `offset` (within the file).
    func seek(to offset: Int) throws(TarStreamError) {
        if offset >= bufferStart && offset <= bufferStart + filled {
            cursor = offset - bufferStart
            return
        }
        guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else {
            throw .readFailed(path: path, reason: "seek: " + String(cString: strerror(errno)))
        }
        bufferStart = offset
        filled = 0
        cursor = 0
    }

    func read(_ count: Int) throws(TarStreamError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(count, 1 << 26))
        while out.count < count {
            if cursor == filled {
                guard try refill() else { break }
            }
            let take = min(count - out.count, filled - cursor)
            out += buffer[cursor..<(cursor + take)]
            cursor += take
        }
        return out
    }

    func skip(_ count: Int) throws(TarStreamError) -> Int {
        let target = min(position + count, max(size, position))
        let skipped = target - position
        try seek(to: target)
        return skipped
    }

    private func refill() throws(TarStreamError) -> Bool {
        bufferStart += filled
        filled = 0
        cursor = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress!, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw .readFailed(path: path, reason: String(cString: strerror(errno))) }
            filled = got
            return got > 0
        }
    }
}

/// read(2), named apart from the `read` methods of the streams.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

/// Bytes held in memory (tests, and member data read whole).
final class MemoryStream: ByteStream {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func read(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, position + count)
        defer { position = end }
        return Array(bytes[position..<end])
    }

    func skip(_ count: Int) -> Int {
        let end = min(bytes.count, position + count)
        defer { position = end }
        return end - position
    }
}

/// One header block, parsed; no I/O.
struct TarHeader: Equatable {
    /// The name, with the ustar prefix joined when there is one.
    let name: [UInt8]
    let size: Int
    let typeflag: UInt8

    /// The header in `block` (512 bytes); nil for a zero block (the end of the archive).
    static func parse(_ block: [UInt8]) -> Result<TarHeader?, TarHeaderProblem> {
        precondition(block.count == Tar.block)
        if block.allSatisfy({ $0 == 0 }) { return .success(nil) }
        var unsigned = 0, signed = 0
        for (i, byte) in block.enumerated() {
            let value = (148..<156).contains(i) ? 0x20 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        guard let stored = parseNumber(block[148..<156]), stored == unsigned || stored == signed else {
            return .failure(TarHeaderProblem(reason: "checksum does not match"))
        }
        guard let size = parseNumber(block[124..<136]), size >= 0 else {
            return .failure(TarHeaderProblem(reason: "the size field is not a number"))
        }
        var name = Array(block[0..<100].prefix { $0 != 0 })
        let posixMagic = Array("ustar".utf8) + [0]
        if Array(block[257..<263]) == posixMagic {
            let prefix = block[345..<500].prefix { $0 != 0 }
            if !prefix.isEmpty { name = Array(prefix) + [UInt8(ascii: "/")] + name }
        }
        return .success(TarHeader(name: name, size: size, typeflag: block[156]))
    }

    /// An octal field (leading spaces, ended by NUL or space) or a GNU base-256 one.
    static func parseNumber(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            guard first & 0x40 == 0 else { return nil }  // negative
            var value = Int(first & 0x3F)
            for byte in field.dropFirst() {
                let (shifted, overflow) = value.multipliedReportingOverflow(by: 256)
                guard !overflow else { return nil }
                value = shifted | Int(byte)
            }
            return value
        }
        return Tar.parseOctal(field)
    }

    /// The records of a pax extended header ("<length> <key>=<value>\n" each).
    static func paxRecords(_ data: [UInt8]) -> [String: [UInt8]]? {
        var records: [String: [UInt8]] = [:]
        var start = 0
        while start < data.count {
            if data[start] == 0 { break }  // some writers pad with NULs
            guard let space = data[start...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[start..<space], as: UTF8.self)), length > space - start,
                  start + length <= data.count, data[start + length - 1] == UInt8(ascii: "\n"),
                  let equals = data[(space + 1)..<(start + length)].firstIndex(of: UInt8(ascii: "=")) else {
                return nil
            }
            let key = String(decoding: data[(space + 1)..<equals], as: UTF8.self)
            records[key] = Array(data[(equals + 1)..<(start + length - 1)])
            start += length
        }
        return records
    }
}

struct TarHeaderProblem: Error, Equatable {
    let reason: String
}

/// A member as a `TarReader` yields it.
struct TarEntry: Equatable {
    enum Kind: Equatable {
        case regular
        case directory
        /// Links, devices, FIFOs, sparse files...: typeflag as a character.
        case other(String)
    }
    /// The member's path as text, nil when its bytes are not UTF-8.
    let name: String?
    /// The path with bytes that are not UTF-8 shown as `\xNN`, for messages.
    let shownName: String
    let kind: Kind
    let size: Int
    /// Offset of the member's first header (its long-name or pax header, if any).
    let headerOffset: Int
}

/// Reads the members of one archive from a stream, in order.
final class TarReader {
    /// The archive's name in messages.
    let archive: String
    private let stream: ByteStream
    /// Bytes of the archive consumed so far.
    private(set) var offset: Int
    private var remaining = 0
    private var padding = 0
    private var ended = false
    /// The current member's name, for messages.
    private var currentName = "a member"

    /// A reader of `stream`, which is positioned at `offset` of the archive (a member's first
    /// header, or 0).
    init(archive: String, stream: ByteStream, offset: Int = 0) {
        self.archive = archive
        self.stream = stream
        self.offset = offset
    }

    /// Where the next member's first header is, once the current member's data is passed.
    var nextHeaderOffset: Int { offset + remaining + padding }

    /// The next member, skipping what is left of the current one; nil at the end of the archive.
    func next() throws(TarStreamError) -> TarEntry? {
        guard !ended else { return nil }
        try skipToNextHeader()
        let headerOffset = offset
        var longName: [UInt8]?
        var paxPath: [UInt8]?
        var paxSize: Int?
        while true {
            let blockOffset = offset
            let block = try stream.read(Tar.block)
            offset += block.count
            guard block.count == Tar.block else {
                throw .truncated(archive: archive, offset: blockOffset,
                                 reason: blockOffset == headerOffset ? "the archive ends without its end-of-archive block" : "the archive ends inside a header")
            }
            let header: TarHeader
            switch TarHeader.parse(block) {
            case .failure(let problem): throw .badHeader(archive: archive, offset: blockOffset, reason: problem.reason)
            case .success(nil):
                ended = true
                return nil
            case .success(let parsed?): header = parsed
            }
            switch header.typeflag {
            case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g"):
                guard header.size <= 1 << 20 else {
                    throw .badHeader(archive: archive, offset: blockOffset, reason: "an extended header of \(header.size) bytes")
                }
                let data = try readExactly(header.size, member: "an extended header")
                try skipExactly(Tar.padding(header.size), member: "an extended header")
                if header.typeflag == UInt8(ascii: "L") {
                    longName = Array(data.prefix { $0 != 0 })
                } else if header.typeflag == UInt8(ascii: "x") {
                    guard let records = TarHeader.paxRecords(data) else {
                        throw .badHeader(archive: archive, offset: blockOffset, reason: "malformed pax extended header")
                    }
                    if let path = records["path"] { paxPath = path }
                    if let size = records["size"] {
                        guard let value = Int(String(decoding: size, as: UTF8.self)), value >= 0 else {
                            throw .badHeader(archive: archive, offset: blockOffset, reason: "pax size is not a number")
                        }
                        paxSize = value
                    }
                }
                continue  // 'K' (long link name) and 'g' (global) change nothing we use
            default:
                break
            }
            let nameBytes = paxPath ?? longName ?? header.name
            let size = paxSize ?? header.size
            let kind: TarEntry.Kind
            switch header.typeflag {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .regular
            case UInt8(ascii: "5"): kind = .directory
            default: kind = .other(String(UnicodeScalar(header.typeflag)))
            }
            // Directories, links and devices carry no data in the archive (a hard link's size is 0).
            let dataSize = kind == .directory ? 0 : size
            remaining = dataSize
            padding = Tar.padding(dataSize)
            let name = String(validating: nameBytes, as: UTF8.self)
            let shownName = name ?? DatasetIndex.escapedName(nameBytes)
            currentName = shownName
            return TarEntry(name: name, shownName: shownName, kind: kind, size: dataSize, headerOffset: headerOffset)
        }
    }

    /// All the data of the current member (it must be unread).
    func readMember(name: String) throws(TarStreamError) -> [UInt8] {
        let count = remaining
        let data = try readExactly(count, member: name)
        remaining = 0
        return data
    }

    /// The current member's data as a stream (for an archive inside this one).
    func memberStream(name: String) -> ByteStream {
        MemberStream(reader: self, name: name)
    }

    private final class MemberStream: ByteStream {
        let reader: TarReader
        let name: String
        init(reader: TarReader, name: String) {
            self.reader = reader
            self.name = name
        }

        func read(_ count: Int) throws(TarStreamError) -> [UInt8] {
            let wanted = min(count, reader.remaining)
            let data = try reader.readExactly(wanted, member: name)
            reader.remaining -= wanted
            return data
        }

        func skip(_ count: Int) throws(TarStreamError) -> Int {
            let wanted = min(count, reader.remaining)
            try reader.skipExactly(wanted, member: name)
            reader.remaining -= wanted
            return wanted
        }
    }

    private func skipToNextHeader() throws(TarStreamError) {
        try skipExactly(remaining + padding, member: currentName)
        remaining = 0
        padding = 0
    }

    private func readExactly(_ count: Int, member: String) throws(TarStreamError) -> [UInt8] {
        let start = offset
        let data = try stream.read(count)
        offset += data.count
        guard data.count == count else {
            throw .truncated(archive: archive, offset: start + data.count, reason: "the archive ends inside \(member) (\(data.count) of \(count) bytes)")
        }
        return data
    }

    private func skipExactly(_ count: Int, member: String) throws(TarStreamError) {
        let start = offset
        let skipped = try stream.skip(count)
        offset += skipped
        guard skipped == count else {
            throw .truncated(archive: archive, offset: start + skipped, reason: "the archive ends inside \(member) (\(skipped) of \(count) bytes)")
        }
    }
}
