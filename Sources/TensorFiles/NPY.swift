/// NumPy's .npy format for float32 arrays (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
///
///     "\x93NUMPY" major minor, header length (v1: 2 bytes, v2/v3: 4 bytes, little-endian),
///     header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
///     padded with spaces and ended by '\n' so that the data starts at a multiple of 64,
///     then the values, little-endian, C order.
///
/// Only little-endian float32 in C order is read; anything else is a typed error naming the file.

/// A float32 array: its shape and its values in C order.
public struct NPYArray: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// Why a .npy file was refused.
public enum NPYError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// The bytes do not start with the .npy magic string.
    case notNPY(file: String)
    /// A format version other than 1, 2 or 3.
    case unsupportedVersion(file: String, major: Int, minor: Int)
    /// The file ends inside the preamble or header.
    case truncated(file: String, reason: String)
    /// The header dict cannot be read or lacks a key.
    case malformedHeader(file: String, reason: String)
    /// The element type is not little-endian float32 ('<f4').
    case unsupportedDType(file: String, descr: String)
    /// The array is stored in Fortran (column-major) order.
    case fortranOrder(file: String)
    /// The data length differs from what the shape needs.
    case sizeMismatch(file: String, expectedBytes: Int, actualBytes: Int)
    /// The values do not fill the shape (when encoding).
    case shapeMismatch(shape: [Int], valueCount: Int)
    /// Writing the file failed.
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): return "\(file): cannot read: \(reason)"
        case .notNPY(let file): return "\(file): not a .npy file (no \\x93NUMPY magic)"
        case .unsupportedVersion(let file, let major, let minor): return "\(file): unsupported .npy version \(major).\(minor)"
        case .truncated(let file, let reason): return "\(file): truncated .npy file: \(reason)"
        case .malformedHeader(let file, let reason): return "\(file): malformed .npy header: \(reason)"
        case .unsupportedDType(let file, let descr): return "\(file): dtype '\(descr)' is not little-endian float32 ('<f4')"
        case .fortranOrder(let file): return "\(file): Fortran-order arrays are not supported"
        case .sizeMismatch(let file, let expected, let actual):
            return "\(file): shape needs \(expected) data bytes but the file has \(actual)"
        case .shapeMismatch(let shape, let count): return "shape \(shape) does not hold \(count) values"
        case .writeFailed(let file, let reason): return "\(file): write failed: \(reason)"
        }
    }
}

public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Reads a float32 .npy file.
    public static func read(_ path: String) throws(NPYError) -> NPYArray {
        let bytes: [UInt8]
        do {
            bytes = try BinaryFile.read(path)
        } catch {
            throw .unreadable(file: path, reason: error.description)
        }
        return try decode(bytes, source: path)
    }

    /// Writes a float32 .npy file (version 1.0) atomically.
    public static func write(_ array: NPYArray, to path: String) throws(NPYError) {
        let bytes = try encode(array)
        do {
            try BinaryFile.writeAtomically(bytes, to: path)
        } catch {
            throw .writeFailed(file: path, reason: error.description)
        }
    }

    /// The bytes of a version 1.0 .npy file holding `array`, laid out as numpy.save does.
    public static func encode(_ array: NPYArray) throws(NPYError) -> [UInt8] {
        guard array.shape.allSatisfy({ $0 >= 0 }), array.shape.reduce(1, *) == array.values.count else {
            throw .shapeMismatch(shape: array.shape, valueCount: array.values.count)
        }
        let shapeText: String
        switch array.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(array.shape[0]),)"
        default: shapeText = "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let preamble = magic.count + 2 + 2  // magic, version, 2-byte length
        let padded = (preamble + header.count + 1 + 63) / 64 * 64
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padded - preamble - header.count - 1))
        header.append(UInt8(ascii: "\n"))

        var out = magic + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
        out.append(contentsOf: header)
        array.values.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Parses the bytes of a .npy file; `source` names it in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>") throws(NPYError) -> NPYArray {
        guard bytes.count >= magic.count, bytes.starts(with: magic) else {
            if bytes.count < magic.count, magic.starts(with: bytes), !bytes.isEmpty {
                throw .truncated(file: source, reason: "ends inside the magic string")
            }
            throw .notNPY(file: source)
        }
        guard bytes.count >= 8 else { throw .truncated(file: source, reason: "ends before the version") }
        let major = Int(bytes[6]), minor = Int(bytes[7])
        let lengthBytes: Int
        switch major {
        case 1: lengthBytes = 2
        case 2, 3: lengthBytes = 4
        default: throw .unsupportedVersion(file: source, major: major, minor: minor)
        }
        guard bytes.count >= 8 + lengthBytes else { throw .truncated(file: source, reason: "ends before the header length") }
        var headerLength = 0
        for k in 0..<lengthBytes { headerLength |= Int(bytes[8 + k]) << (8 * k) }
        let headerStart = 8 + lengthBytes
        guard headerLength <= bytes.count - headerStart else {
            throw .truncated(file: source, reason: "header of \(headerLength) bytes runs past the end")
        }
        let dataStart = headerStart + headerLength

        let dict: [String: PythonLiteral]
        do {
            dict = try PythonLiteralReader.parseDict(Array(bytes[headerStart..<dataStart]))
        } catch {
            throw .malformedHeader(file: source, reason: error.reason)
        }
        guard case .string(let descr)? = dict["descr"] else {
            throw .malformedHeader(file: source, reason: "no 'descr' string")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw .malformedHeader(file: source, reason: "no 'fortran_order' boolean")
        }
        guard case .tuple(let shape)? = dict["shape"] else {
            throw .malformedHeader(file: source, reason: "no 'shape' tuple")
        }
        guard descr == "<f4" else { throw .unsupportedDType(file: source, descr: descr) }
        guard !fortran else { throw .fortranOrder(file: source) }

        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, dimension >= 0 else {
                throw .malformedHeader(file: source, reason: "shape \(shape) is too large")
            }
            count = product
        }
        let dataSize = bytes.count - dataStart
        let (expected, overflow) = count.multipliedReportingOverflow(by: 4)
        guard !overflow, expected == dataSize else {
            throw .sizeMismatch(file: source, expectedBytes: overflow ? Int.max : expected, actualBytes: dataSize)
        }
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[dataStart...]))
            }
            initialized = count
        }
        return NPYArray(shape: shape, values: values)
    }
}

/// The values a .npy header dict may hold.
enum PythonLiteral: Equatable {
    case string(String)
    case bool(Bool)
    case integer(Int)
    case tuple([Int])
}

/// A reader for the small subset of Python literal syntax numpy writes in .npy headers:
/// a dict of quoted keys to quoted strings, True/False, integers and tuples of integers.
struct PythonLiteralReader {
    struct Failure: Error { let reason: String }

    private let bytes: [UInt8]
    private var position = 0

    static func parseDict(_ bytes: [UInt8]) throws(Failure) -> [String: PythonLiteral] {
        var reader = PythonLiteralReader(bytes: bytes)
        return try reader.dict()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func skipSpace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func expect(_ character: Character) throws(Failure) {
        skipSpace()
        guard position < bytes.count, bytes[position] == character.asciiValue! else {
            throw Failure(reason: "expected '\(character)' at header byte \(position)")
        }
        position += 1
    }

    /// True and consumes `character` if it is next.
    private mutating func take(_ character: Character) -> Bool {
        skipSpace()
        if position < bytes.count, bytes[position] == character.asciiValue! {
            position += 1
            return true
        }
        return false
    }

    private mutating func dict() throws(Failure) -> [String: PythonLiteral] {
        try expect("{")
        var result: [String: PythonLiteral] = [:]
        while !take("}") {
            let key = try string()
            try expect(":")
            guard result[key] == nil else { throw Failure(reason: "key '\(key)' appears twice") }
            result[key] = try value()
            if !take(",") {
                try expect("}")
                break
            }
        }
        skipSpace()
        guard position == bytes.count else { throw Failure(reason: "unexpected text after the dict") }
        return result
    }

    private mutating func value() throws(Failure) -> PythonLiteral {
        skipSpace()
        guard position < bytes.count else { throw Failure(reason: "header ends inside the dict") }
        switch bytes[position] {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "("): return .tuple(try tuple())
        case UInt8(ascii: "T"): try word("True"); return .bool(true)
        case UInt8(ascii: "F"): try word("False"); return .bool(false)
        default: return .integer(try integer())
        }
    }

    private mutating func word(_ text: String) throws(Failure) {
        for expected in text.utf8 {
            guard position < bytes.count, bytes[position] == expected else { throw Failure(reason: "expected \(text)") }
            position += 1
        }
    }

    private mutating func string() throws(Failure) -> String {
        skipSpace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "'") || bytes[position] == UInt8(ascii: "\"") else {
            throw Failure(reason: "expected a quoted string at header byte \(position)")
        }
        let quote = bytes[position]
        position += 1
        let start = position
        while position < bytes.count, bytes[position] != quote {
            guard bytes[position] != UInt8(ascii: "\\") else { throw Failure(reason: "escapes in strings are not supported") }
            position += 1
        }
        guard position < bytes.count else { throw Failure(reason: "unterminated string") }
        defer { position += 1 }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func integer() throws(Failure) -> Int {
        skipSpace()
        let start = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        guard position > start, let value = Int(String(decoding: bytes[start..<position], as: UTF8.self)) else {
            throw Failure(reason: "expected an integer at header byte \(start)")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "L") { position += 1 }  // Python 2 long
        return value
    }

    private mutating func tuple() throws(Failure) -> [Int] {
        try expect("(")
        var elements: [Int] = []
        while !take(")") {
            elements.append(try integer())
            if !take(",") {
                try expect(")")
                break
            }
        }
        return elements
    }
}
