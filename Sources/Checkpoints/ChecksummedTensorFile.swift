import TensorFiles
/// A checkpoint's safetensors file (model.safetensors, optimizer.safetensors): the tensors plus
/// string metadata "format" ("pt", so PyTorch's safetensors loads it), "step", "epoch", "config"
/// and "crc32c", a JSON object mapping every tensor name to its CRC-32C as 8 hex digits, as
/// FinalWeights writes it. The object lists the tensors in the checkpoint's order, which the file's
/// data (sorted by name) does not keep; reading restores it.
enum ChecksummedTensorFile {
    static func encode(_ tensors: [NamedTensor], state: CheckpointState) throws(CheckpointError) -> [UInt8] {
        let checksums = JSONValue.object(tensors.map { (key: $0.name, value: .string(hex8($0.crc32c))) })
        let metadata = ["format": "pt", "step": String(state.step), "epoch": String(state.epoch),
                        "config": state.config, "crc32c": checksums.serialized()]
        do {
            return try SafeTensors.encode(tensors, metadata: metadata)
        } catch {
            throw .invalidCheckpoint(reason: "\(error)")
        }
    }

    /// The verified tensors of the file at `path`, in the stored order: every tensor's CRC-32C
    /// matches, and step, epoch and config match `state`.
    static func read(_ path: String, state: CheckpointState) throws(CheckpointError) -> [NamedTensor] {
        let file = try readSafeTensors(path)
        for (key, expected) in [("step", String(state.step)), ("epoch", String(state.epoch)), ("config", state.config)] {
            guard let found = file.metadata[key] else {
                throw .inconsistent(path: path, reason: "metadata has no '\(key)'")
            }
            guard found == expected else {
                throw .inconsistent(path: path, reason: "metadata \(key) is '\(found)' but state.json says '\(expected)'")
            }
        }
        let order = try checksums(of: file, path: path)
        guard order.count == file.tensors.count else {
            throw .badChecksumList(path: path, reason: "\(order.count) checksums for \(file.tensors.count) tensors")
        }
        var byName: [String: NamedTensor] = [:]
        for tensor in file.tensors { byName[tensor.name] = tensor }
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(order.count)
        for (name, expected) in order {
            guard let tensor = byName[name] else {
                throw .badChecksumList(path: path, reason: "checksum for '\(name)', which the file does not hold")
            }
            let found = tensor.crc32c
            guard found == expected else {
                throw .checksumMismatch(path: path, tensor: name, expected: expected, found: found)
            }
            tensors.append(tensor)
        }
        return tensors
    }

    private static func readSafeTensors(_ path: String) throws(CheckpointError) -> SafeTensorsFile {
        let bytes = try CheckpointFile.readBytes(path)
        do {
            return try SafeTensors.decode(bytes, source: path)
        } catch {
            // The codec's description starts with the file's name, which the error names already.
            let reason = error.description
            throw .corruptFile(path: path, reason: reason.hasPrefix(path + ": ") ? String(reason.dropFirst(path.count + 2)) : reason)
        }
    }

    /// The "crc32c" metadata as (name, checksum) pairs in stored order.
    private static func checksums(of file: SafeTensorsFile, path: String) throws(CheckpointError) -> [(String, UInt32)] {
        guard let text = file.metadata["crc32c"] else {
            throw .badChecksumList(path: path, reason: "metadata has no 'crc32c'")
        }
        guard case .object(let members)? = try? JSONValue.parse(Array(text.utf8)) else {
            throw .badChecksumList(path: path, reason: "'crc32c' is not a JSON object without repeated names")
        }
        var pairs: [(String, UInt32)] = []
        for member in members {
            guard case .string(let digits) = member.value, digits.count == 8, digits.allSatisfy(\.isHexDigit),
                  let value = UInt32(digits, radix: 16) else {
                throw .badChecksumList(path: path, reason: "checksum of '\(member.key)' is not 8 hex digits")
            }
            pairs.append((member.key, value))
        }
        return pairs
    }
}
