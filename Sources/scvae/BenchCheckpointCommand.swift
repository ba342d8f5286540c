import ArgumentParser
import Checkpoints
import CommandOptions
import Foundation
import Model
import TensorFiles

/// `scvae bench checkpoint`: the time to write and to load+verify one full checkpoint (weights and
/// both Adam moments) of a configuration, through CheckpointStore as the coordinator writes it.
/// Beside each write, the same bytes are written as one plain file (write, fsync, rename): the
/// disk's rate at that moment, which on a shared VM varies several-fold from minute to minute.
struct BenchCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Write and load+verify full checkpoints (model + Adam m and v) of a configuration: seconds, MB/s, bytes.")

    @Option(help: "Model configuration whose parameter layout is checkpointed.")
    var config: ModelConfigName = ModelConfigName(.small)

    @OptionGroup var logging: LoggingOptions

    @Option(help: "Checkpoint directory (created; must not hold checkpoints). Default: a fresh one under the temporary folder, removed afterwards.")
    var directory: String?

    @Option(help: "Checkpoints written (each a new step), each then loaded and verified.")
    var repeats: Int = 5

    @Option(help: "Checkpoints kept, as the coordinator's --keep: older ones are pruned after each write.")
    var keep: Int = 3

    func validate() throws {
        guard repeats >= 1, keep >= 1 else { throw ValidationError("--repeats and --keep must be at least 1.") }
        if let directory, !CheckpointStore(directory: directory).checkpointPaths().isEmpty {
            throw ValidationError("--directory \(directory) already holds checkpoints; give an empty or new one.")
        }
    }

    func run() throws {
        logging.bootstrap()
        let layout = ParameterLayout(config: config.config)
        let folder = directory ?? FileManager.default.temporaryDirectory.path + "/scvae-bench-checkpoint-\(getpid())"
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let store = CheckpointStore(directory: folder, keep: keep)
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; config \(config.config.name): \(layout.entries.count) tensors, "
              + "\(layout.totalCount) parameters; directory \(folder)")

        var writes: [Double] = []
        var loads: [Double] = []
        var plainWrites: [Double] = []
        var bytes = 0
        for step in 1...repeats {
            let checkpoint = Self.seededCheckpoint(layout: layout, config: config.config.name, step: step)
            let path = try Self.seconds(into: &writes) { try store.write(checkpoint) }
            let loaded = try Self.seconds(into: &loads) { try CheckpointFile.load(path) }
            guard loaded == checkpoint else { throw ValidationError("checkpoint \(path) did not load back identical") }
            let content = try Self.contentOfFiles(in: path)
            bytes = content.count
            let plainFile = folder + "/plain-file.bin"
            try Self.seconds(into: &plainWrites) { try BinaryFile.writeAtomically(content, to: plainFile) }
            try FileManager.default.removeItem(atPath: plainFile)
        }

        let megabytes = Double(bytes) / 1e6
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        func figures(_ values: [Double]) -> String {
            String(format: "median %.3f s, %.0f MB/s (each: %@)", median(values), megabytes / median(values),
                   values.map { String(format: "%.2f", $0) }.joined(separator: " "))
        }
        print(String(format: "checkpoint: %d bytes (%.1f MB: model + Adam m and v + state.json), %d writes, keep %d",
                     bytes, megabytes, repeats, keep))
        print("write (encode, write, fsync each, rename, fsync dir, prune): " + figures(writes))
        print("the same bytes as one plain file (write, fsync, rename):     " + figures(plainWrites))
        print("load + verify (read, parse, CRC32C of every tensor; files likely in page cache): " + figures(loads))
    }

    /// Runs `body`, appends its wall-clock seconds to `times`, returns its result.
    @discardableResult
    static func seconds<T>(into times: inout [Double], _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        return result
    }

    /// The bytes of a checkpoint's three files, one after the other.
    static func contentOfFiles(in path: String) throws -> [UInt8] {
        try ["model.safetensors", "optimizer.safetensors", "state.json"].flatMap { try BinaryFile.read(path + "/" + $0) }
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
