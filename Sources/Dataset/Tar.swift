import Images
import TensorFiles
/// The POSIX ustar tar format, as far as shards need it: regular files only, written
/// deterministically (mode 0644, owner 0, time 0), read with checksum validation.
///
/// A member is a 512-byte header (name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8]
/// typeflag[1] linkname[100] "ustar\0" "00" uname[32] gname[32] devmajor[8] devminor[8]
/// prefix[155], numbers in octal) followed by the data padded to 512 bytes; two zero blocks end
/// the archive. The checksum is the byte sum of the header with its own field read as spaces.
enum Tar {
    static let block = 512

    /// Why tar bytes were refused.
    enum Failure: Error, Equatable {
        case nameTooLong(String)
        case badChecksum(offset: Int)
        case badHeader(offset: Int, reason: String)
        case truncated(offset: Int)
    }

    /// A regular file found in an archive: its name and where its data lies.
    struct Member: Equatable {
        let name: String
        let dataOffset: Int
        let size: Int
    }

    /// The header block of a regular file `name` of `size` bytes.
    static func header(name: String, size: Int) throws(Failure) -> [UInt8] {
        let bytes = Array(name.utf8)
        guard bytes.count <= 100 else { throw .nameTooLong(name) }
        var header = [UInt8](repeating: 0, count: block)
        func put(_ field: [UInt8], at offset: Int) {
            for (i, byte) in field.enumerated() { header[offset + i] = byte }
        }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: width - 1 - digits.count) + digits).utf8) + [0]
        }
        put(bytes, at: 0)
        put(octal(0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        put([UInt8](repeating: 0x20, count: 8), at: 148)
        header[156] = UInt8(ascii: "0")
        put(Array("ustar".utf8) + [0] + Array("00".utf8), at: 257)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(octal(sum, width: 7) + [0x20], at: 148)
        return header
    }

    /// Zero bytes padding `size` to a whole number of blocks.
    static func padding(_ size: Int) -> Int {
        (block - size % block) % block
    }

    /// The end-of-archive marker.
    static let end = [UInt8](repeating: 0, count: 2 * block)

    /// The regular-file members of a whole archive, validating every header.
    static func members(_ bytes: [UInt8]) throws(Failure) -> [Member] {
        var members: [Member] = []
        var offset = 0
        while true {
            guard offset + block <= bytes.count else { throw .truncated(offset: offset) }
            let header = bytes[offset..<(offset + block)]
            if header.allSatisfy({ $0 == 0 }) { return members }
            var sum = 0
            for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int(byte) }
            guard let stored = parseOctal(header.dropFirst(148).prefix(8)), stored == sum else {
                throw .badChecksum(offset: offset)
            }
            guard let size = parseOctal(header.dropFirst(124).prefix(12)) else {
                throw .badHeader(offset: offset, reason: "size is not octal")
            }
            let nameBytes = header.prefix(100).prefix { $0 != 0 }
            let prefixBytes = header.dropFirst(345).prefix(155).prefix { $0 != 0 }
            var name = String(decoding: nameBytes, as: UTF8.self)
            if !prefixBytes.isEmpty { name = String(decoding: prefixBytes, as: UTF8.self) + "/" + name }
            let dataOffset = offset + block
            guard dataOffset + size <= bytes.count else { throw .truncated(offset: offset) }
            let type = header[header.startIndex + 156]
            if type == UInt8(ascii: "0") || type == 0 {
                members.append(Member(name: name, dataOffset: dataOffset, size: size))
            }
            offset = dataOffset + size + padding(size)
        }
    }

    static func parseOctal(_ field: ArraySlice<UInt8>) -> Int? {
        let digits = field.drop { $0 == 0x20 }.prefix { $0 != 0 && $0 != 0x20 }
        guard !digits.isEmpty else { return 0 }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit) else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 8)
            guard !overflow else { return nil }
            value = shifted + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }
}
