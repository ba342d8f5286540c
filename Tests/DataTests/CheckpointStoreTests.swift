import Foundation
import Testing
@testable import TensorFiles
@testable import Checkpoints

@Suite struct CheckpointStoreTests {
    @Test func writeThenLoadIsBitExactAndKeepsTheTensorOrder() throws {
        let directory = TemporaryDirectory()
        let original = CheckpointSamples.checkpoint(step: 7)
        let path = try CheckpointStore(directory: directory.path).write(original)
        #expect(path == directory.path + "/step-00000007")
        let loaded = try CheckpointFile.load(path)
        #expect(loaded == original)
        #expect(loaded.model.map(\.name) == ["encoder.conv_in.weight", "Dict", "c", "decoder.conv_out.bias"])
        #expect(loaded.model[0].data == original.model[0].data, "negative zero, NaN payload and subnormal survive")
        #expect(loaded.state.seed == UInt64.max - 7)
    }

    @Test func aCheckpointIsThreeFilesInItsStepDirectoryWithNothingLeftBeside() throws {
        let directory = TemporaryDirectory()
        try CheckpointStore(directory: directory.path).write(CheckpointSamples.checkpoint(step: 123_456_789))
        #expect(CheckpointSamples.names(in: directory.path) == ["step-123456789"])
        #expect(CheckpointSamples.names(in: directory.file("step-123456789"))
                == ["model.safetensors", "optimizer.safetensors", "state.json"])
    }

    @Test func modelFileCarriesStringMetadataWithAChecksumPerTensor() throws {
        let directory = TemporaryDirectory()
        let checkpoint = CheckpointSamples.checkpoint(step: 12)
        let path = try CheckpointStore(directory: directory.path).write(checkpoint)
        let file = try SafeTensors.read(path + "/model.safetensors")
        #expect(file.metadata["format"] == "pt")
        #expect(file.metadata["step"] == "12")
        #expect(file.metadata["epoch"] == "1")
        #expect(file.metadata["config"] == "tiny")
        let listed = try JSONSerialization.jsonObject(with: Foundation.Data(file.metadata["crc32c"]!.utf8)) as? [String: String]
        let expected = Dictionary(uniqueKeysWithValues: checkpoint.model.map { ($0.name, String(format: "%08x", $0.crc32c)) })
        #expect(listed == expected)
        let optimizer = try SafeTensors.read(path + "/optimizer.safetensors")
        #expect(optimizer.tensors.count == 8)
        #expect(optimizer.metadata["crc32c"]?.contains("\"v.Dict\"") == true)
    }

    @Test func stateJSONHasSortedKeysAndEveryField() throws {
        let directory = TemporaryDirectory()
        let path = try CheckpointStore(directory: directory.path).write(CheckpointSamples.checkpoint(step: 3))
        let text = String(decoding: try BinaryFile.read(path + "/state.json"), as: UTF8.self)
        let keys = ["codeVersion", "config", "cursorEpoch", "cursorStep", "datasetFingerprint", "epoch", "formatVersion",
                    "globalBatch", "optimizerStep", "recipeJSON", "rng", "seed", "step", "worldSize"]
        let positions = keys.map { text.range(of: "\"\($0)\"")?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil })
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
        #expect(text.contains("\"seed\" : 18446744073709551608"))
    }

    @Test func keepsOnlyTheNewestK() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2, 3, 4, 5], keep: 3)
        #expect(store.checkpointPaths() == [3, 4, 5].map { directory.path + "/step-0000000\($0)" })
        #expect(CheckpointSamples.names(in: directory.path) == ["step-00000003", "step-00000004", "step-00000005"])
    }

    @Test func pathsAreOrderedByStepNotByName() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [100_000_000, 99_999_999], keep: 5)
        #expect(store.checkpointPaths() == [directory.file("step-99999999"), directory.file("step-100000000")])
    }

    @Test func theCheckpointJustWrittenIsKeptEvenWhenOlderThanTheRest() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [5, 6], keep: 2)
        try store.write(CheckpointSamples.checkpoint(step: 3))
        #expect(store.checkpointPaths() == [3, 5, 6].map { directory.path + "/step-0000000\($0)" })
    }

    @Test func keepBelowOneKeepsOne() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2], keep: 0)
        #expect(store.keep == 1)
        #expect(store.checkpointPaths() == [directory.file("step-00000002")])
    }

    @Test func rewritingAStepReplacesItWhole() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [4])
        let second = CheckpointSamples.checkpoint(step: 4, salt: 40)
        #expect(second != CheckpointSamples.checkpoint(step: 4))
        try store.write(second)
        #expect(try CheckpointFile.load(directory.file("step-00000004")) == second)
        #expect(CheckpointSamples.names(in: directory.path) == ["step-00000004"], "no temporary or old copy left")
    }

    @Test func rewritingAStepWithoutAnAtomicSwapReplacesItToo() throws {
        let directory = TemporaryDirectory()
        var store = try CheckpointSamples.store(directory, steps: [3, 4])
        store.replacesByExchange = false
        let second = CheckpointSamples.checkpoint(step: 4, salt: 40)
        try store.write(second)
        #expect(try CheckpointFile.load(directory.file("step-00000004")) == second)
        #expect(try CheckpointFile.load(directory.file("step-00000003")) == CheckpointSamples.checkpoint(step: 3))
        #expect(CheckpointSamples.names(in: directory.path) == ["step-00000003", "step-00000004"], "the old copy is removed")
    }

    @Test func exchangeSwapsTwoDirectoriesOrChangesNothing() throws {
        let directory = TemporaryDirectory()
        directory.write([1], to: "a/one")
        directory.write([2], to: "b/two")
        let swapped = try FileSystem.exchange(directory.file("a"), directory.file("b"))
        #if os(Linux)
        #expect(swapped, "renameat2(RENAME_EXCHANGE) works on ext4 and tmpfs")
        #endif
        #expect(CheckpointSamples.names(in: directory.file("a")) == (swapped ? ["two"] : ["one"]))
        #expect(CheckpointSamples.names(in: directory.file("b")) == (swapped ? ["one"] : ["two"]))
    }

    @Test func listingIgnoresTemporariesFilesAndOtherNames() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [2])
        try FileManager.default.createDirectory(atPath: directory.file(".step-00000003.tmp-42"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: directory.file("step-7"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: directory.file("step-0000000x"), withIntermediateDirectories: false)
        directory.write([1], to: "step-00000009")
        directory.write([1], to: "notes.txt")
        #expect(store.checkpointPaths() == [directory.file("step-00000002")])
        #expect(store.temporaryPaths() == [directory.file(".step-00000003.tmp-42")])
    }

    @Test func aDirectoryOfAnotherConfigurationIsRefusedAndLeftAlone() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1], keep: 1)
        let error = checkpointError { () throws(CheckpointError) in
            try store.write(CheckpointSamples.checkpoint(step: 2, config: "small"))
        }
        #expect(error == .configMismatch(path: directory.file("step-00000001"), expected: "small", found: "tiny"))
        #expect(try CheckpointFile.load(directory.file("step-00000001")) == CheckpointSamples.checkpoint(step: 1))
        #expect(CheckpointSamples.names(in: directory.path) == ["step-00000001"])
    }

    @Test func anInvalidCheckpointIsRefusedBeforeTheDiskIsTouched() throws {
        let directory = TemporaryDirectory()
        let target = directory.file("run")
        let store = CheckpointStore(directory: target)
        var missingMoment = CheckpointSamples.checkpoint(step: 1)
        missingMoment.optimizer.removeLast()
        var wrongShape = CheckpointSamples.checkpoint(step: 1)
        wrongShape.model[1].shape = [4, 4]
        var negativeStep = CheckpointSamples.checkpoint(step: 1)
        negativeStep.state.step = -1
        let errors = [missingMoment, wrongShape, negativeStep].map { checkpoint in
            checkpointError { () throws(CheckpointError) in try store.write(checkpoint) }
        }
        #expect(errors[0] == .invalidCheckpoint(reason: "no 'v.decoder.conv_out.bias' for model tensor 'decoder.conv_out.bias'"))
        #expect(errors[1] == .invalidCheckpoint(reason: "'m.Dict' has shape [3, 4], its weight [4, 4]"))
        #expect(errors[2] == .invalidCheckpoint(reason: "step is negative (-1)"))
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func aTensorTheCodecRefusesLeavesEarlierCheckpointsAndNoTemporary() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1])
        var shortData = CheckpointSamples.checkpoint(step: 2)
        shortData.model[2].data.removeLast()
        let error = checkpointError { () throws(CheckpointError) in try store.write(shortData) }
        #expect(error == .invalidCheckpoint(reason: "<memory>: tensor 'c' needs 4 bytes for its shape and dtype but has 3"))
        #expect(CheckpointSamples.names(in: directory.path) == ["step-00000001"])
        #expect(try CheckpointFile.load(directory.file("step-00000001")) == CheckpointSamples.checkpoint(step: 1))
    }

    @Test func aCheckpointWithoutOptimizerStateRoundTrips() throws {
        let directory = TemporaryDirectory()
        var plainSGD = CheckpointSamples.checkpoint(step: 2)
        plainSGD.optimizer = []
        let path = try CheckpointStore(directory: directory.path).write(plainSGD)
        #expect(try CheckpointFile.load(path) == plainSGD)
    }
}
