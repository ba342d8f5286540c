import TensorFiles
/// Reading one checkpoint directory (`DIR/step-NNNNNNNN/`; see CheckpointName for its files).
public enum CheckpointFile {
    /// Loads and verifies one checkpoint directory: state.json parses and is of this format; every
    /// tensor of model.safetensors and optimizer.safetensors has its stored CRC-32C; both files'
    /// step, epoch and config match state.json and the directory name; the optimizer holds the
    /// "m." and "v." moments of exactly the model tensors (or nothing).
    public static func load(_ path: String) throws(CheckpointError) -> Checkpoint {
        guard FileSystem.exists(path) else { throw .missingFile(path: path) }
        guard FileSystem.isDirectory(path) else { throw .unreadable(path: path, reason: "not a directory") }
        let state = try readState(path + "/" + CheckpointName.state)
        let name = path.split(separator: "/").last ?? ""
        if let step = CheckpointName.step(ofDirectory: name), step != state.step {
            throw .inconsistent(path: path, reason: "the directory is named for step \(step) but state.json says \(state.step)")
        }
        let model = try ChecksummedTensorFile.read(path + "/" + CheckpointName.model, state: state)
        let optimizerPath = path + "/" + CheckpointName.optimizer
        let optimizer = try ChecksummedTensorFile.read(optimizerPath, state: state)
        if let problem = Checkpoint.optimizerMismatch(model: model, optimizer: optimizer) {
            throw .optimizerMismatch(path: optimizerPath, reason: problem)
        }
        return Checkpoint(state: state, model: model, optimizer: optimizer)
    }

    /// What `scvae checkpoint inspect` and `verify` show of a checkpoint, after loading and
    /// verifying it as `load` does.
    public static func summary(_ path: String) throws(CheckpointError) -> CheckpointSummary {
        let checkpoint = try load(path)
        func rows(_ tensors: [NamedTensor], file: String) -> [CheckpointSummary.Tensor] {
            tensors.map { .init(file: file, name: $0.name, shape: $0.shape, dtype: $0.dtype, crc32c: $0.crc32c) }
        }
        let files = [CheckpointName.model, CheckpointName.optimizer, CheckpointName.state].map { name in
            CheckpointSummary.File(name: name, bytes: FileSystem.fileSize(path + "/" + name) ?? 0)
        }
        return CheckpointSummary(path: path, state: checkpoint.state,
                                 tensors: rows(checkpoint.model, file: CheckpointName.model)
                                     + rows(checkpoint.optimizer, file: CheckpointName.optimizer),
                                 files: files)
    }

    static func readState(_ path: String) throws(CheckpointError) -> CheckpointState {
        try CheckpointStateFile.decode(try readBytes(path), path: path)
    }

    /// The whole file; `.missingFile` when there is none.
    static func readBytes(_ path: String) throws(CheckpointError) -> [UInt8] {
        do {
            return try BinaryFile.read(path)
        } catch {
            if case .cannotOpen = error, !FileSystem.exists(path) { throw .missingFile(path: path) }
            throw .unreadable(path: path, reason: error.description)
        }
    }
}

/// A verified checkpoint described: its state, every tensor with its checksum, and file sizes.
public struct CheckpointSummary: Equatable, Sendable {
    public struct Tensor: Equatable, Sendable {
        /// The file holding it: model.safetensors or optimizer.safetensors.
        public var file: String
        public var name: String
        public var shape: [Int]
        public var dtype: TensorDType
        public var crc32c: UInt32
        /// The checksum as stored in the metadata: 8 lower-case hex digits.
        public var crc32cHex: String { hex8(crc32c) }
    }

    public struct File: Equatable, Sendable {
        public var name: String
        public var bytes: Int
    }

    public var path: String
    public var state: CheckpointState
    /// Model tensors in their order, then the optimizer's.
    public var tensors: [Tensor]
    public var files: [File]

    public var totalBytes: Int { files.reduce(0) { $0 + $1.bytes } }
}
