import ArgumentParser
import Data
import Foundation
import Model

/// `scvae bench checkpoint`: the time to write and to load+verify one full checkpoint (weights and
/// both Adam moments) of a configuration, through CheckpointStore as the coordinator writes it.
struct BenchCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Write and load+verify full checkpoints (model + Adam m and v) of a configuration: seconds, MB/s, bytes.")

    @Option(help: "Model configuration whose parameter layout is checkpointed: tiny, small, imagenet-f8 or imagenet-f16.")
    var config: String = "small"

    @Option(help: "Checkpoint directory (created; must not hold checkpoints). Default: a fresh one under the temporary folder, removed afterwards.")
    var directory: String?

    @Option(help: "Checkpoints written (each a new step), each then loaded and verified.")
    var repeats: Int = 3

    func validate() throws {
        guard ModelConfig.named(config) != nil else {
            throw ValidationError("--config must be one of \(ModelConfig.all.map(\.name).joined(separator: ", ")); got '\(config)'.")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1.") }
        if let directory, !CheckpointStore(directory: directory).checkpointPaths().isEmpty {
            throw ValidationError("--directory \(directory) already holds checkpoints; give an empty or new one.")
        }
    }

    func run() throws {
        let modelConfig = ModelConfig.named(config)!
        let layout = ParameterLayout(config: modelConfig)
        let folder = directory ?? FileManager.default.temporaryDirectory.path + "/scvae-bench-checkpoint-\(getpid())"
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let store = CheckpointStore(directory: folder, keep: repeats)

        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; config \(config): \(layout.entries.count) tensors, "
              + "\(layout.totalCount) parameters; directory \(folder)")
        var writes: [Double] = []
        var loads: [Double] = []
        var path = ""
        for step in 1...repeats {
            let checkpoint = Self.seededCheckpoint(layout: layout, config: config, step: step)
            let start = DispatchTime.now().uptimeNanoseconds
            path = try store.write(checkpoint)
            let written = DispatchTime.now().uptimeNanoseconds
            let loaded = try CheckpointFile.load(path)
            let end = DispatchTime.now().uptimeNanoseconds
            guard loaded == checkpoint else { throw ValidationError("checkpoint \(path) did not load back identical") }
            writes.append(Double(written - start) / 1e9)
            loads.append(Double(end - written) / 1e9)
        }
        let bytes = try CheckpointFile.summary(path).totalBytes
        let write = writes.sorted()[writes.count / 2]
        let load = loads.sorted()[loads.count / 2]
        let plain = try Self.plainFileSeconds(copying: path, directory: folder, repeats: repeats)
        print(String(format: "checkpoint: %d bytes (%.1f MB: model + Adam m and v + state.json)", bytes, Double(bytes) / 1e6))
        print(String(format: "write (encode, write, fsync, rename, fsync dir): median %.3f s over %d, %.0f MB/s",
                     write, repeats, Double(bytes) / 1e6 / write))
        print(String(format: "ceiling now: the same bytes as one plain file from fresh memory (write, fsync, rename): median %.3f s, %.0f MB/s",
                     plain, Double(bytes) / 1e6 / plain))
        print(String(format: "load + verify (read, parse, CRC32C of every tensor; file likely in page cache): median %.3f s, %.0f MB/s",
                     load, Double(bytes) / 1e6 / load))
    }

    /// Median seconds to write the bytes of the checkpoint at `path` as one file with
    /// BinaryFile.writeAtomically, from freshly allocated memory as a checkpoint's encoded bytes
    /// are (on this VM, writing from fresh pages is several times slower than from reused ones):
    /// the ceiling a checkpoint write has on this disk at this moment.
    static func plainFileSeconds(copying path: String, directory: String, repeats: Int) throws -> Double {
        let content = try ["model.safetensors", "optimizer.safetensors", "state.json"].flatMap { name in
            try BinaryFile.read(path + "/" + name)
        }
        let file = directory + "/plain-file.bin"
        defer { try? FileManager.default.removeItem(atPath: file) }
        var seconds: [Double] = []
        for _ in 0..<repeats {
            try? FileManager.default.removeItem(atPath: file)
            let fresh = [UInt8](unsafeUninitializedCapacity: content.count) { buffer, count in
                content.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
                count = content.count
            }
            let start = DispatchTime.now().uptimeNanoseconds
            try BinaryFile.writeAtomically(fresh, to: file)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return seconds.sorted()[seconds.count / 2]
    }

    /// A checkpoint of `layout` with reproducible values (from the step as seed) for weights and moments.
    static func seededCheckpoint(layout: ParameterLayout, config: String, step: Int) -> Checkpoint {
        let random = CounterRandom(seed: UInt64(step))
        func tensor(_ name: String, _ entry: ParameterEntry, stream: UInt64) -> NamedTensor {
            let values = (0..<entry.count).map { random.unitFloat(stream: stream, counter: UInt64($0)) - 0.5 }
            return NamedTensor(name: name, shape: entry.shape, floats: values)
        }
        var model: [NamedTensor] = []
        var optimizer: [NamedTensor] = []
        for (index, entry) in layout.entries.enumerated() {
            let stream = UInt64(index) * 3
            model.append(tensor(entry.name, entry, stream: stream))
            optimizer.append(tensor("m." + entry.name, entry, stream: stream + 1))
            optimizer.append(tensor("v." + entry.name, entry, stream: stream + 2))
        }
        let state = CheckpointState(step: step, epoch: 0, cursorEpoch: 0, cursorStep: step + 1, optimizerStep: step,
                                    worldSize: 1, config: config, globalBatch: 16, seed: UInt64(step),
                                    datasetFingerprint: "bench", codeVersion: "bench", recipeJSON: "{}", rng: "keyed-splitmix64")
        return Checkpoint(state: state, model: model, optimizer: optimizer)
    }
}
