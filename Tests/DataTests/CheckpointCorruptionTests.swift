import Foundation
import Testing
@testable import TensorFiles
@testable import Checkpoints

/// A damaged newest checkpoint is detected, named in a warning, and the previous valid one used.
@Suite struct CheckpointCorruptionTests {
    /// Writes steps 1 and 2, damages step 2 with `damage`, then loads the newest valid one and
    /// checks it is step 1; returns the warnings and the error loading step 2 gives.
    private func damageNewest(_ damage: (String) throws -> Void) throws -> (warnings: [String], error: CheckpointError?) {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2])
        let newest = directory.file("step-00000002")
        try damage(newest)
        var warnings: [String] = []
        let chosen = store.loadNewestValid { warnings.append($0) }
        #expect(chosen == CheckpointSamples.checkpoint(step: 1))
        return (warnings, checkpointError { () throws(CheckpointError) in try CheckpointFile.load(newest) })
    }

    @Test func aTruncatedModelFile() throws {
        var path = ""
        let (warnings, error) = try damageNewest { newest in
            path = newest + "/model.safetensors"
            try alterFile(path) { $0.removeLast(5) }
        }
        guard case .corruptFile(path, let reason)? = error else {
            Issue.record("expected corruptFile of \(path), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("outside the"), "the codec's reason: \(reason)")
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains(path) == true)
        #expect(warnings.first?.contains("corrupt or truncated") == true)
    }

    @Test func aFlippedByteInATensorFailsItsChecksum() throws {
        var path = ""
        let (warnings, error) = try damageNewest { newest in
            path = newest + "/model.safetensors"
            try alterFile(path) { $0[$0.count - 1] ^= 0x10 }  // data is in name order: the last is encoder.conv_in.weight
        }
        let stored = CheckpointSamples.checkpoint(step: 2).model[0]
        var flipped = stored
        flipped.data[flipped.data.count - 1] ^= 0x10
        #expect(error == .checksumMismatch(path: path, tensor: "encoder.conv_in.weight",
                                           expected: stored.crc32c, found: flipped.crc32c))
        #expect(warnings == ["checkpoint \((path as NSString).deletingLastPathComponent) skipped: \(error!)"])
        #expect(warnings.first?.contains("tensor 'encoder.conv_in.weight' fails its checksum") == true)
    }

    @Test func aFlippedByteInTheOptimizerFile() throws {
        var path = ""
        let (_, error) = try damageNewest { newest in
            path = newest + "/optimizer.safetensors"
            try alterFile(path) { $0[$0.count - 2] ^= 0x01 }  // last in name order: v.encoder.conv_in.weight
        }
        guard case .checksumMismatch(path, "v.encoder.conv_in.weight", _, _)? = error else {
            Issue.record("expected a checksum mismatch of v.encoder.conv_in.weight, got \(String(describing: error))")
            return
        }
    }

    @Test func aMissingStateFile() throws {
        var path = ""
        let (warnings, error) = try damageNewest { newest in
            path = newest + "/state.json"
            try FileManager.default.removeItem(atPath: path)
        }
        #expect(error == .missingFile(path: path))
        #expect(warnings.first?.contains("\(path): missing") == true)
    }

    @Test func aMalformedStateFile() throws {
        var path = ""
        let (warnings, error) = try damageNewest { newest in
            path = newest + "/state.json"
            try alterFile(path) { $0 = Array(#"{"formatVersion": 1, "step": 2,"#.utf8) }
        }
        #expect(error == .malformedState(path: path, reason: "not valid JSON"))
        #expect(warnings.first?.contains(path) == true)
    }

    @Test func aStateFileWithAFieldMissing() throws {
        var path = ""
        let (_, error) = try damageNewest { newest in
            path = newest + "/state.json"
            try alterFile(path) { bytes in
                let text = String(decoding: bytes, as: UTF8.self)
                bytes = Array(text.replacingOccurrences(of: "\"worldSize\"", with: "\"world\"").utf8)
            }
        }
        #expect(error == .malformedState(path: path, reason: "field 'worldSize' is missing"))
    }

    @Test func aStateFileOfANewerFormat() throws {
        var path = ""
        let (_, error) = try damageNewest { newest in
            path = newest + "/state.json"
            try alterFile(path) { $0 = Array(#"{"formatVersion": 2, "somethingNew": true}"#.utf8) }
        }
        #expect(error == .unsupportedFormatVersion(path: path, version: 2))
    }

    @Test func filesOfDifferentCheckpointsMixed() throws {
        var path = ""
        let (_, error) = try damageNewest { newest in
            path = newest + "/model.safetensors"
            let older = (newest as NSString).deletingLastPathComponent + "/step-00000001/model.safetensors"
            try alterFile(path) { $0 = try! BinaryFile.read(older) }
        }
        #expect(error == .inconsistent(path: path, reason: "metadata step is '1' but state.json says '2'"))
    }

    @Test func aDirectoryRenamedToAnotherStep() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2])
        try FileManager.default.moveItem(atPath: directory.file("step-00000002"), toPath: directory.file("step-00000005"))
        var warnings: [String] = []
        #expect(store.loadNewestValid { warnings.append($0) }?.state.step == 1)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("step-00000005: inconsistent checkpoint") == true)
        #expect(checkpointError { () throws(CheckpointError) in try CheckpointFile.load(directory.file("step-00000005")) }
                == .inconsistent(path: directory.file("step-00000005"), reason: "the directory is named for step 5 but state.json says 2"))
    }

    @Test func aHalfWrittenTemporaryIsIgnoredNamedAndRemovable() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2])
        let temporary = directory.file(".step-00000003.tmp-4242")
        let complete = try BinaryFile.read(directory.file("step-00000002/model.safetensors"))
        directory.write(Array(complete.prefix(complete.count / 2)), to: ".step-00000003.tmp-4242/model.safetensors")
        var warnings: [String] = []
        #expect(store.loadNewestValid { warnings.append($0) } == CheckpointSamples.checkpoint(step: 2))
        #expect(warnings == ["\(temporary): left by an interrupted checkpoint write or removal; ignored"])
        let lock = try CheckpointDirectoryLock.acquire(directory: store.directory)
        #expect(store.removeTemporaries(holding: lock) == [temporary])
        #expect(CheckpointSamples.names(in: directory.path) == [CheckpointDirectoryLock.fileName, "step-00000001", "step-00000002"])
        #expect(store.removeTemporaries(holding: lock) == [])
    }

    @Test func nothingValidGivesNilWithAWarningForEach() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2])
        for step in [1, 2] { try FileManager.default.removeItem(atPath: directory.file("step-0000000\(step)/optimizer.safetensors")) }
        var warnings: [String] = []
        #expect(store.loadNewestValid { warnings.append($0) } == nil)
        #expect(warnings.count == 2)
        #expect(warnings[0].contains("step-00000002/optimizer.safetensors: missing"))
        #expect(warnings[1].contains("step-00000001/optimizer.safetensors: missing"))
    }

    @Test func anEmptyOrAbsentDirectoryHasNoCheckpoint() {
        let directory = TemporaryDirectory()
        var warnings: [String] = []
        #expect(CheckpointStore(directory: directory.path).loadNewestValid { warnings.append($0) } == nil)
        #expect(CheckpointStore(directory: directory.file("absent")).loadNewestValid { warnings.append($0) } == nil)
        #expect(CheckpointStore(directory: directory.file("absent")).checkpointPaths().isEmpty)
        #expect(warnings.isEmpty)
    }
}

/// At start the coordinator (holding the folder's lock) moves a broken newest checkpoint aside, so
/// every checkpoint left in the folder verifies and a prune never keeps the broken one.
@Suite struct CheckpointQuarantineTests {
    @Test func aBrokenNewestCheckpointIsMovedToCorruptAndTheValidOneLoads() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2])
        let newest = directory.file("step-00000002")
        try alterFile(newest + "/model.safetensors") { $0[$0.count - 1] ^= 0x10 }
        let lock = try CheckpointDirectoryLock.acquire(directory: store.directory)
        defer { lock.release() }
        var warnings: [String] = []
        let chosen = store.loadNewestValid(quarantining: lock) { warnings.append($0) }
        #expect(chosen == CheckpointSamples.checkpoint(step: 1))
        #expect(store.checkpointPaths() == [directory.file("step-00000001")], "only verified checkpoints stay")
        let moved = try FileManager.default.contentsOfDirectory(atPath: directory.file("corrupt"))
        #expect(moved.count == 1 && moved[0].hasPrefix("step-00000002-"), "\(moved)")
        #expect(warnings.count == 1 && warnings[0].contains("fails its checksum") && warnings[0].contains("moved to"), "\(warnings)")
        // A step written again after that is a checkpoint like any other.
        try store.write(CheckpointSamples.checkpoint(step: 2))
        #expect(store.checkpointPaths().count == 2)
    }
}
