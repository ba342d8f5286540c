/// Element types of transferred tensors (safetensors names in comments).
public enum DType: UInt8, Sendable, CaseIterable {
    case float32 = 1   // F32
    case float16 = 2   // F16
    case bfloat16 = 3  // BF16
    case float64 = 4   // F64
    case int32 = 5     // I32
    case int64 = 6     // I64
    case uint8 = 7     // U8

    public var byteSize: Int {
        switch self {
        case .uint8: 1
        case .float16, .bfloat16: 2
        case .float32, .int32: 4
        case .float64, .int64: 8
        }
    }
}

/// What a tensor transfer carries.
public enum TransferKind: UInt8, Sendable, CaseIterable {
    case parameters = 1
    case optimizerState = 2
}

/// One piece of a named tensor: parameters or optimizer state moving between the coordinator
/// and workers (resume, checkpoint upload) or to a joining worker. Large tensors are cut into
/// several chunks, each below the frame limit.
public struct TensorChunk: WirePayload {
    public static let kind = MessageKind.tensorChunk

    public var transfer: TransferKind
    /// The step the state belongs to.
    public var step: UInt64
    public var tensorIndex: UInt32
    public var tensorCount: UInt32
    public var name: String
    public var dtype: DType
    public var shape: [UInt64]
    /// Where `bytes` start within the tensor's bytes.
    public var byteOffset: UInt64
    /// CRC32C of the whole tensor's bytes, checked once it is assembled.
    public var tensorChecksum: UInt32
    public var bytes: [UInt8]

    public init(transfer: TransferKind, step: UInt64, tensorIndex: UInt32, tensorCount: UInt32, name: String,
                dtype: DType, shape: [UInt64], byteOffset: UInt64, tensorChecksum: UInt32, bytes: [UInt8]) {
        self.transfer = transfer
        self.step = step
        self.tensorIndex = tensorIndex
        self.tensorCount = tensorCount
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteOffset = byteOffset
        self.tensorChecksum = tensorChecksum
        self.bytes = bytes
    }

    /// Bytes of the whole tensor, or nil when the shape's product overflows.
    public static func totalBytes(shape: [UInt64], dtype: DType) -> UInt64? {
        var total = UInt64(dtype.byteSize)
        for extent in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// Cuts one tensor into chunks of at most `maxChunkBytes` (at least one chunk, even if empty).
    public static func chunks(transfer: TransferKind, step: UInt64, tensorIndex: UInt32, tensorCount: UInt32,
                              name: String, dtype: DType, shape: [UInt64], bytes: [UInt8],
                              maxChunkBytes: Int = 8 << 20) -> [TensorChunk] {
        let checksum = crc32c(bytes)
        let size = max(maxChunkBytes, 1)
        var result: [TensorChunk] = []
        var start = 0
        repeat {
            let end = min(start + size, bytes.count)
            result.append(TensorChunk(transfer: transfer, step: step, tensorIndex: tensorIndex,
                                      tensorCount: tensorCount, name: name, dtype: dtype, shape: shape,
                                      byteOffset: UInt64(start), tensorChecksum: checksum,
                                      bytes: Array(bytes[start..<end])))
            start = end
        } while start < bytes.count
        return result
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(transfer.rawValue)
        writer.write(step)
        writer.write(tensorIndex)
        writer.write(tensorCount)
        writer.write(name)
        writer.write(dtype.rawValue)
        writer.writeArray(shape) { $0.write($1) }
        writer.write(byteOffset)
        writer.write(tensorChecksum)
        writer.writeBlob(bytes)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        transfer = try reader.readEnum("tensorChunk.transfer")
        step = try reader.readUInt64("tensorChunk.step")
        tensorIndex = try reader.readUInt32("tensorChunk.tensorIndex")
        tensorCount = try reader.readUInt32("tensorChunk.tensorCount")
        guard tensorIndex < tensorCount else {
            throw .invalidValue(field: "tensorChunk.tensorIndex", detail: "\(tensorIndex) is not below tensor count \(tensorCount)")
        }
        name = try reader.readString("tensorChunk.name")
        guard !name.isEmpty else { throw .invalidValue(field: "tensorChunk.name", detail: "empty") }
        dtype = try reader.readEnum("tensorChunk.dtype")
        shape = try reader.readArray("tensorChunk.shape", minimumElementSize: 8) { r throws(DecodeError) in
            try r.readUInt64("tensorChunk.shape[]")
        }
        byteOffset = try reader.readUInt64("tensorChunk.byteOffset")
        tensorChecksum = try reader.readUInt32("tensorChunk.tensorChecksum")
        bytes = try reader.readBlob("tensorChunk.bytes")
        guard let total = TensorChunk.totalBytes(shape: shape, dtype: dtype) else {
            throw .invalidValue(field: "tensorChunk.shape", detail: "\(shape) of \(dtype) overflows 64 bits")
        }
        let (end, overflow) = byteOffset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow, end <= total else {
            throw .invalidValue(field: "tensorChunk.byteOffset",
                                detail: "\(bytes.count) bytes at \(byteOffset) run past the tensor's \(total) bytes ('\(name)')")
        }
    }
}
