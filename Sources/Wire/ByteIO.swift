/// Little-endian writer for frame headers and message payloads.
///
/// Everything on the wire is little-endian; strings and byte blobs are length-prefixed
/// (`UInt32` count, then the bytes), arrays are a `UInt32` count then the elements.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
    public mutating func write(_ value: UInt16) { writeLittleEndian(value) }
    public mutating func write(_ value: UInt32) { writeLittleEndian(value) }
    public mutating func write(_ value: UInt64) { writeLittleEndian(value) }
    public mutating func write(_ value: Int32) { writeLittleEndian(UInt32(bitPattern: value)) }
    public mutating func write(_ value: Int64) { writeLittleEndian(UInt64(bitPattern: value)) }
    public mutating func write(_ value: Float) { writeLittleEndian(value.bitPattern) }
    public mutating func write(_ value: Double) { writeLittleEndian(value.bitPattern) }

    /// A `UInt32` length, then the UTF-8 bytes.
    public mutating func write(_ value: String) { writeBlob(Array(value.utf8)) }

    /// A `UInt32` length, then the bytes.
    public mutating func writeBlob(_ blob: [UInt8]) {
        write(UInt32(truncatingIfNeeded: blob.count))
        bytes.append(contentsOf: blob)
    }

    /// Raw bytes with no length prefix (the caller knows the length).
    public mutating func writeRaw(_ raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }

    /// Writes `0` for nil, `1` then the value otherwise.
    public mutating func writeOptional<T>(_ value: T?, _ writeValue: (inout ByteWriter, T) -> Void) {
        if let value {
            write(UInt8(1))
            writeValue(&self, value)
        } else {
            write(UInt8(0))
        }
    }

    /// A `UInt32` count, then each element.
    public mutating func writeArray<T>(_ values: [T], _ writeValue: (inout ByteWriter, T) -> Void) {
        write(UInt32(truncatingIfNeeded: values.count))
        for value in values { writeValue(&self, value) }
    }

    private mutating func writeLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
    }
}

/// Bounds-checked little-endian reader. Every read either returns a value or throws
/// `DecodeError.truncated` naming the field; nothing here can trap on any input.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    /// Index of the next byte to read.
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = min(max(offset, 0), bytes.count)
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { remaining == 0 }

    public mutating func readUInt8(_ field: String) throws(DecodeError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(field: field, needed: 1, available: remaining) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readBool(_ field: String) throws(DecodeError) -> Bool {
        let raw = try readUInt8(field)
        switch raw {
        case 0: return false
        case 1: return true
        default: throw .invalidValue(field: field, detail: "boolean byte \(raw), expected 0 or 1")
        }
    }

    public mutating func readUInt16(_ field: String) throws(DecodeError) -> UInt16 { try readLittleEndian(field) }
    public mutating func readUInt32(_ field: String) throws(DecodeError) -> UInt32 { try readLittleEndian(field) }
    public mutating func readUInt64(_ field: String) throws(DecodeError) -> UInt64 { try readLittleEndian(field) }
    public mutating func readInt32(_ field: String) throws(DecodeError) -> Int32 {
        Int32(bitPattern: try readLittleEndian(field) as UInt32)
    }
    public mutating func readInt64(_ field: String) throws(DecodeError) -> Int64 {
        Int64(bitPattern: try readLittleEndian(field) as UInt64)
    }
    public mutating func readFloat(_ field: String) throws(DecodeError) -> Float {
        Float(bitPattern: try readLittleEndian(field))
    }
    public mutating func readDouble(_ field: String) throws(DecodeError) -> Double {
        Double(bitPattern: try readLittleEndian(field))
    }

    /// Reads exactly `count` bytes.
    public mutating func readRaw(_ field: String, count: Int) throws(DecodeError) -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw .truncated(field: field, needed: count, available: remaining)
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A `UInt32` length then that many bytes; the length is checked against what is left
    /// before anything is allocated, so a hostile length cannot exhaust memory.
    public mutating func readBlob(_ field: String) throws(DecodeError) -> [UInt8] {
        let count = try readUInt32(field + ".count")
        return try readRaw(field, count: Int(count))
    }

    public mutating func readString(_ field: String) throws(DecodeError) -> String {
        let raw = try readBlob(field)
        guard let string = String(validating: raw, as: UTF8.self) else {
            throw .invalidValue(field: field, detail: "\(raw.count) bytes are not valid UTF-8")
        }
        return string
    }

    public mutating func readOptional<T>(
        _ field: String, _ readValue: (inout ByteReader) throws(DecodeError) -> T
    ) throws(DecodeError) -> T? {
        switch try readUInt8(field + ".present") {
        case 0: return nil
        case 1: return try readValue(&self)
        case let other: throw .invalidValue(field: field, detail: "optional marker \(other), expected 0 or 1")
        }
    }

    /// A `UInt32` count then the elements. `minimumElementSize` (bytes) bounds the count by
    /// what is left, so a hostile count cannot make us reserve huge arrays.
    public mutating func readArray<T>(
        _ field: String, minimumElementSize: Int,
        _ readValue: (inout ByteReader) throws(DecodeError) -> T
    ) throws(DecodeError) -> [T] {
        let count = Int(try readUInt32(field + ".count"))
        let elementSize = max(minimumElementSize, 1)
        guard count <= remaining / elementSize else {
            throw .truncated(field: field, needed: count.multipliedReportingOverflow(by: elementSize).partialValue,
                             available: remaining)
        }
        var values: [T] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try readValue(&self)) }
        return values
    }

    /// Throws unless every byte was consumed: trailing garbage is an error, not ignored.
    public func expectEnd(_ what: String) throws(DecodeError) {
        guard isAtEnd else { throw .trailingBytes(message: what, count: remaining) }
    }

    private mutating func readLittleEndian<T: FixedWidthInteger>(_ field: String) throws(DecodeError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(field: field, needed: size, available: remaining) }
        var value: T = 0
        for index in 0..<size {
            value |= T(bytes[offset + index]) << (8 * index)
        }
        offset += size
        return value
    }
}
