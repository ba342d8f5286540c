/// Reassembles named tensors from `TensorChunk`s (the coordinator receiving an upload, a
/// worker receiving a restore or a joining worker's state). An I/O-free value: feed it chunks
/// in the order they arrived, get each tensor when its last byte is in and its CRC32C checks.
///
/// Chunks of one tensor must arrive in order (one ZeroMQ connection keeps order); tensors may
/// interleave. All chunks of one assembler belong to one transfer kind and step.
public struct TensorAssembler: Sendable {
    /// A complete, verified tensor.
    public struct Tensor: Equatable, Sendable {
        public var index: Int
        public var name: String
        public var dtype: DType
        public var shape: [UInt64]
        public var bytes: [UInt8]
    }

    /// Why a chunk was refused. The assembler is unchanged by a refused chunk.
    public enum AssemblyError: Error, Equatable, Sendable {
        /// The chunk belongs to another transfer or step than the first chunk (`expected`).
        case otherTransfer(expected: String, found: String)
        /// A chunk of tensor `index` disagrees with its earlier chunks on `field`.
        case inconsistent(name: String, index: Int, field: String)
        /// A chunk of `name` starts at `found`; the bytes so far end at `expected`.
        case outOfOrder(name: String, expected: UInt64, found: UInt64)
        /// `name` would need `bytes` bytes; the assembler accepts at most `limit` in total.
        case tooLarge(name: String, bytes: UInt64, limit: Int)
        /// The assembled bytes of `name` do not match the sender's CRC32C.
        case checksum(name: String, expected: UInt32, computed: UInt32)
        /// Tensor `index` was already complete.
        case duplicate(name: String, index: Int)
    }

    private struct Partial: Sendable {
        var first: TensorChunk
        var bytes: [UInt8]
        var total: UInt64
    }

    public let maxTotalBytes: Int
    private var transfer: (kind: TransferKind, step: UInt64, count: UInt32)?
    private var partial: [UInt32: Partial] = [:]
    private var done: Set<UInt32> = []
    private var allocated: UInt64 = 0

    public init(maxTotalBytes: Int = 16 << 30) {
        self.maxTotalBytes = maxTotalBytes
    }

    /// Bytes of storage held by incomplete tensors (their buffers' capacity), for tests.
    var heldCapacity: Int { partial.values.reduce(0) { $0 + $1.bytes.capacity } }

    /// True once every tensor of the transfer has been returned by `add`.
    public var isComplete: Bool { transfer.map { UInt32(done.count) == $0.count } ?? false }

    /// Adds a chunk; returns the tensor it completes, if any.
    public mutating func add(_ chunk: TensorChunk) throws(AssemblyError) -> Tensor? {
        if let transfer {
            guard transfer.kind == chunk.transfer, transfer.step == chunk.step, transfer.count == chunk.tensorCount else {
                throw .otherTransfer(expected: "\(transfer.kind) step \(transfer.step) of \(transfer.count) tensors",
                                     found: "\(chunk.transfer) step \(chunk.step) of \(chunk.tensorCount) tensors")
            }
        }
        let index = chunk.tensorIndex
        guard !done.contains(index) else { throw .duplicate(name: chunk.name, index: Int(index)) }
        var entry: Partial
        // The budget after this chunk's tensor is admitted; committed only once every check passed.
        var admitted = allocated
        if let existing = partial[index] {
            let first = existing.first
            for (field, same) in [("name", first.name == chunk.name), ("dtype", first.dtype == chunk.dtype),
                                  ("shape", first.shape == chunk.shape), ("tensorChecksum", first.tensorChecksum == chunk.tensorChecksum)]
            where !same {
                throw .inconsistent(name: first.name, index: Int(index), field: field)
            }
            entry = existing
        } else {
            // The decoder already checked that the shape's byte count fits in 64 bits.
            let total = TensorChunk.totalBytes(shape: chunk.shape, dtype: chunk.dtype) ?? .max
            let (sum, overflow) = allocated.addingReportingOverflow(total)
            guard !overflow, sum <= UInt64(maxTotalBytes) else {
                throw .tooLarge(name: chunk.name, bytes: total, limit: maxTotalBytes)
            }
            // No reservation of `total`: a frame may claim any size up to the limit, so memory
            // grows only with bytes that actually arrive.
            entry = Partial(first: chunk, bytes: [], total: total)
            admitted = sum
        }
        guard chunk.byteOffset == UInt64(entry.bytes.count) else {
            throw .outOfOrder(name: chunk.name, expected: UInt64(entry.bytes.count), found: chunk.byteOffset)
        }
        let (end, overflow) = chunk.byteOffset.addingReportingOverflow(UInt64(chunk.bytes.count))
        guard !overflow, end <= entry.total else {
            throw .inconsistent(name: chunk.name, index: Int(index), field: "byteOffset")
        }
        if end == entry.total {
            let computed = crc32c(chunk.bytes, continuing: crc32c(entry.bytes))
            guard computed == entry.first.tensorChecksum else {
                throw .checksum(name: chunk.name, expected: entry.first.tensorChecksum, computed: computed)
            }
        }
        if transfer == nil { transfer = (chunk.transfer, chunk.step, chunk.tensorCount) }
        allocated = admitted
        entry.bytes.append(contentsOf: chunk.bytes)
        guard UInt64(entry.bytes.count) == entry.total else {
            partial[index] = entry
            return nil
        }
        partial[index] = nil
        done.insert(index)
        return Tensor(index: Int(index), name: entry.first.name, dtype: entry.first.dtype, shape: entry.first.shape,
                      bytes: entry.bytes)
    }
}
