import CCRC32C

/// The safetensors format (https://github.com/huggingface/safetensors), read and written without
/// knowing any layer:
///
///     [8 bytes: N, unsigned little-endian] [N bytes: JSON header] [data]
///
/// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets
/// relative to the start of the data, plus an optional "__metadata__" object of string values.
/// Tensors are little-endian, C order. As the reference writer does, the header is padded with
/// spaces to a multiple of 8 bytes and tensors are laid out back to back, larger element types
/// first and by name within a type (so every tensor is aligned to its element size, and an all-F32
/// file is in name order). As the reference reader does, a file is refused unless the tensors
/// tile the data exactly: no overlap, no gap, no trailing bytes.

/// One tensor as stored: name, shape, element type and its little-endian bytes in C order.
public struct NamedTensor: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var dtype: TensorDType
    public var data: [UInt8]

    public init(name: String, shape: [Int], dtype: TensorDType, data: [UInt8]) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.data = data
    }

    /// An F32 tensor holding `floats` (count must match the shape; checked when written).
    public init(name: String, shape: [Int], floats: [Float]) {
        self.init(name: name, shape: shape, dtype: .F32,
                  data: floats.withUnsafeBytes { Array($0) })
    }

    /// CRC-32C (Castagnoli) of the data bytes: the per-tensor checksum of checkpoints.
    public var crc32c: UInt32 {
        data.withUnsafeBytes { scvae_crc32c(0, $0.baseAddress, $0.count) }
    }

    /// Number of elements the shape describes (1 for a scalar, shape []).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The values of an F32 tensor.
    public func floats() throws(SafeTensorsError) -> [Float] {
        guard dtype == .F32 else { throw .notFloat32(tensor: name, dtype: dtype.rawValue) }
        let count = data.count / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<count * 4]))
            }
            initialized = count
        }
    }

    /// The values of an F32, F64, F16 or BF16 tensor widened or narrowed to Float.
    public func convertedToFloats() throws(SafeTensorsError) -> [Float] {
        func halves(_ convert: (UInt16) -> Float) -> [Float] {
            stride(from: 0, to: data.count - 1, by: 2).map { convert(UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8) }
        }
        switch dtype {
        case .F32: return try floats()
        case .F16: return halves(HalfFloat.float(fromF16:))
        case .BF16: return halves(HalfFloat.float(fromBF16:))
        case .F64:
            return stride(from: 0, to: data.count - 7, by: 8).map { offset in
                var bits: UInt64 = 0
                for k in 0..<8 { bits |= UInt64(data[offset + k]) << (8 * k) }
                return Float(Double(bitPattern: bits))
            }
        default: throw .notFloat32(tensor: name, dtype: dtype.rawValue)
        }
    }
}

/// The content of a safetensors file: tensors in data order and the "__metadata__" strings.
public struct SafeTensorsFile: Equatable, Sendable {
    public var tensors: [NamedTensor]
    public var metadata: [String: String]

    public init(tensors: [NamedTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public subscript(name: String) -> NamedTensor? {
        tensors.first { $0.name == name }
    }

    /// The tensor called `name`, or `.missingTensor`.
    public func tensor(named name: String, file: String = "<memory>") throws(SafeTensorsError) -> NamedTensor {
        guard let tensor = self[name] else { throw .missingTensor(file: file, tensor: name) }
        return tensor
    }
}

/// Why a safetensors file or tensor was refused. Every case names the file (`<memory>` for
/// bytes not read from disk) and, where one is at fault, the tensor.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// The file is shorter than the 8-byte header length.
    case truncated(file: String, size: Int)
    /// The header length field points past the end of the file.
    case headerLengthBeyondFile(file: String, headerLength: UInt64, fileSize: Int)
    /// The header length exceeds `SafeTensors.maximumHeaderLength`.
    case headerTooLarge(file: String, headerLength: UInt64)
    /// The header is not JSON of the expected form (a reason says which part).
    case malformedHeader(file: String, reason: String)
    /// Two tensors share a name.
    case duplicateTensor(file: String, tensor: String)
    /// The dtype string is not one of `TensorDType`.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A tensor's byte range does not lie within the data.
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingData(file: String, tensor: String, other: String)
    /// Bytes before `tensor` belong to no tensor.
    case gapInData(file: String, tensor: String, unusedBytes: Int)
    /// Bytes after the last tensor belong to no tensor.
    case trailingData(file: String, unusedBytes: Int)
    /// Shape times element size differs from the tensor's byte length.
    case sizeMismatch(file: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// A tensor to be written is inconsistent (negative dimension, reserved name, ...).
    case invalidTensor(tensor: String, reason: String)
    /// A tensor was asked for as Float but holds another type.
    case notFloat32(tensor: String, dtype: String)
    /// No tensor of that name is in the file.
    case missingTensor(file: String, tensor: String)
    /// Writing the file failed.
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): return "\(file): cannot read: \(reason)"
        case .truncated(let file, let size): return "\(file): truncated safetensors file (\(size) bytes, need at least 8)"
        case .headerLengthBeyondFile(let file, let length, let size):
            return "\(file): header length \(length) runs past the end of the \(size)-byte file"
        case .headerTooLarge(let file, let length): return "\(file): header length \(length) is implausibly large"
        case .malformedHeader(let file, let reason): return "\(file): malformed header: \(reason)"
        case .duplicateTensor(let file, let tensor): return "\(file): tensor '\(tensor)' appears twice"
        case .unknownDType(let file, let tensor, let dtype): return "\(file): tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case .offsetsOutOfRange(let file, let tensor, let begin, let end, let size):
            return "\(file): tensor '\(tensor)' has data_offsets [\(begin), \(end)] outside the \(size) data bytes"
        case .overlappingData(let file, let tensor, let other):
            return "\(file): tensors '\(other)' and '\(tensor)' overlap"
        case .gapInData(let file, let tensor, let unused):
            return "\(file): \(unused) unused bytes before tensor '\(tensor)'"
        case .trailingData(let file, let unused): return "\(file): \(unused) unused bytes after the last tensor"
        case .sizeMismatch(let file, let tensor, let expected, let actual):
            return "\(file): tensor '\(tensor)' needs \(expected) bytes for its shape and dtype but has \(actual)"
        case .invalidTensor(let tensor, let reason): return "tensor '\(tensor)': \(reason)"
        case .notFloat32(let tensor, let dtype): return "tensor '\(tensor)' is \(dtype), not F32"
        case .missingTensor(let file, let tensor): return "\(file): no tensor named '\(tensor)'"
        case .writeFailed(let file, let reason): return "\(file): write failed: \(reason)"
        }
    }
}

public enum SafeTensors {
    /// Headers beyond this are refused before any allocation (the reference reader's limit).
    public static let maximumHeaderLength: UInt64 = 100_000_000

    /// Reads a safetensors file.
    public static func read(_ path: String) throws(SafeTensorsError) -> SafeTensorsFile {
        let bytes: [UInt8]
        do {
            bytes = try BinaryFile.read(path)
        } catch {
            throw .unreadable(file: path, reason: error.description)
        }
        return try decode(bytes, source: path)
    }

    /// Writes a safetensors file atomically (temporary file, fsync, rename, directory fsync).
    public static func write(_ tensors: [NamedTensor], metadata: [String: String] = [:],
                             to path: String) throws(SafeTensorsError) {
        let bytes = try encode(tensors, metadata: metadata)
        do {
            try BinaryFile.writeAtomically(bytes, to: path)
        } catch {
            throw .writeFailed(file: path, reason: error.description)
        }
    }

    /// The bytes of a safetensors file holding `tensors` and `metadata`.
    public static func encode(_ tensors: [NamedTensor], metadata: [String: String] = [:]) throws(SafeTensorsError) -> [UInt8] {
        var names = Set<String>()
        for tensor in tensors {
            guard tensor.name != "__metadata__" else {
                throw .invalidTensor(tensor: tensor.name, reason: "the name is reserved for metadata")
            }
            guard names.insert(tensor.name).inserted else {
                throw .duplicateTensor(file: "<memory>", tensor: tensor.name)
            }
            guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
                throw .invalidTensor(tensor: tensor.name, reason: "negative dimension in shape \(tensor.shape)")
            }
            guard let expected = byteCount(shape: tensor.shape, dtype: tensor.dtype), expected == tensor.data.count else {
                throw .sizeMismatch(file: "<memory>", tensor: tensor.name,
                                    expectedBytes: byteCount(shape: tensor.shape, dtype: tensor.dtype) ?? -1,
                                    actualBytes: tensor.data.count)
            }
        }
        let ordered = tensors.sorted {
            $0.dtype.byteSize != $1.dtype.byteSize ? $0.dtype.byteSize > $1.dtype.byteSize : $0.name < $1.name
        }

        var members: [(key: String, value: JSONValue)] = []
        if !metadata.isEmpty {
            let entries = metadata.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.string($0.value)) }
            members.append((key: "__metadata__", value: .object(entries)))
        }
        var offset = 0
        for tensor in ordered {
            let end = offset + tensor.data.count
            members.append((key: tensor.name, value: .object([
                (key: "dtype", value: .string(tensor.dtype.rawValue)),
                (key: "shape", value: .array(tensor.shape.map { .number(String($0)) })),
                (key: "data_offsets", value: .array([.number(String(offset)), .number(String(end))])),
            ])))
            offset = end
        }
        var header = Array(JSONValue.object(members).serialized().utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        let length = UInt64(header.count)
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(k)))) }
        out.append(contentsOf: header)
        for tensor in ordered { out.append(contentsOf: tensor.data) }
        return out
    }

    /// Parses the bytes of a safetensors file; `source` names it in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>") throws(SafeTensorsError) -> SafeTensorsFile {
        guard bytes.count >= 8 else { throw .truncated(file: source, size: bytes.count) }
        var headerLength: UInt64 = 0
        for k in 0..<8 { headerLength |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard headerLength <= maximumHeaderLength else { throw .headerTooLarge(file: source, headerLength: headerLength) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw .headerLengthBeyondFile(file: source, headerLength: headerLength, fileSize: bytes.count)
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart

        let header: JSONValue
        do {
            header = try JSONValue.parse(bytes[8..<dataStart])
        } catch {
            switch error {
            case .duplicateKey(let key): throw .duplicateTensor(file: source, tensor: key)
            case .syntax(let offset, let reason):
                throw .malformedHeader(file: source, reason: "\(reason) at header byte \(offset)")
            }
        }
        guard case .object(let members) = header else {
            throw .malformedHeader(file: source, reason: "the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [(info: TensorEntry, begin: Int, end: Int)] = []
        for member in members {
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member.value, file: source)
                continue
            }
            let info = try TensorEntry(name: member.key, json: member.value, file: source)
            guard info.begin <= info.end, info.end <= dataSize else {
                throw .offsetsOutOfRange(file: source, tensor: info.name, begin: info.begin, end: info.end, dataSize: dataSize)
            }
            guard let expected = byteCount(shape: info.shape, dtype: info.dtype), expected == info.end - info.begin else {
                throw .sizeMismatch(file: source, tensor: info.name,
                                    expectedBytes: byteCount(shape: info.shape, dtype: info.dtype) ?? -1,
                                    actualBytes: info.end - info.begin)
            }
            entries.append((info, info.begin, info.end))
        }

        entries.sort { $0.begin != $1.begin ? $0.begin < $1.begin : $0.end < $1.end }
        var covered = 0
        var previous: String? = nil
        for entry in entries {
            if entry.begin < covered {
                throw .overlappingData(file: source, tensor: entry.info.name, other: previous ?? "")
            }
            if entry.begin > covered {
                throw .gapInData(file: source, tensor: entry.info.name, unusedBytes: entry.begin - covered)
            }
            covered = entry.end
            previous = entry.info.name
        }
        guard covered == dataSize else { throw .trailingData(file: source, unusedBytes: dataSize - covered) }

        let tensors = entries.map { entry in
            NamedTensor(name: entry.info.name, shape: entry.info.shape, dtype: entry.info.dtype,
                        data: Array(bytes[(dataStart + entry.begin)..<(dataStart + entry.end)]))
        }
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Bytes a tensor of this shape and type occupies, nil if the product overflows.
    static func byteCount(shape: [Int], dtype: TensorDType) -> Int? {
        var count = dtype.byteSize
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            count = product
        }
        return count
    }

    private static func parseMetadata(_ value: JSONValue, file: String) throws(SafeTensorsError) -> [String: String] {
        guard case .object(let members) = value else {
            throw .malformedHeader(file: file, reason: "__metadata__ is not an object")
        }
        var metadata: [String: String] = [:]
        for member in members {
            guard case .string(let text) = member.value else {
                throw .malformedHeader(file: file, reason: "__metadata__ value of '\(member.key)' is not a string")
            }
            metadata[member.key] = text
        }
        return metadata
    }
}

/// One tensor's header entry, validated for form (not yet against the data).
private struct TensorEntry {
    let name: String
    let dtype: TensorDType
    let shape: [Int]
    let begin: Int
    let end: Int

    init(name: String, json: JSONValue, file: String) throws(SafeTensorsError) {
        func malformed(_ reason: String) -> SafeTensorsError {
            .malformedHeader(file: file, reason: "tensor '\(name)': \(reason)")
        }
        func integer(_ value: JSONValue) -> Int? {
            guard case .number(let text) = value, let number = Int(text), number >= 0 else { return nil }
            return number
        }
        guard case .object(let fields) = json else { throw malformed("entry is not an object") }
        func field(_ key: String) -> JSONValue? { fields.first { $0.key == key }?.value }

        guard case .string(let dtypeName)? = field("dtype") else { throw malformed("missing dtype string") }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            throw .unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard case .array(let dimensions)? = field("shape") else { throw malformed("missing shape array") }
        var shape: [Int] = []
        for dimension in dimensions {
            guard let size = integer(dimension) else { throw malformed("shape holds a non-integer or negative value") }
            shape.append(size)
        }
        guard case .array(let offsets)? = field("data_offsets"), offsets.count == 2,
              let begin = integer(offsets[0]), let end = integer(offsets[1]) else {
            throw malformed("data_offsets is not two non-negative integers")
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }
}
