import Foundation
import Testing
@testable import TensorFiles
@testable import Checkpoints

@Suite struct CheckpointVerificationTests {
    @Test func summaryListsStateTensorsChecksumsAndFileSizes() throws {
        let directory = TemporaryDirectory()
        let checkpoint = CheckpointSamples.checkpoint(step: 21)
        let path = try CheckpointStore(directory: directory.path).write(checkpoint)
        let summary = try CheckpointFile.summary(path)
        #expect(summary.path == path)
        #expect(summary.state == checkpoint.state)
        #expect(summary.tensors.map(\.name) == (checkpoint.model + checkpoint.optimizer).map(\.name))
        #expect(summary.tensors.first == CheckpointSummary.Tensor(
            file: "model.safetensors", name: "encoder.conv_in.weight", shape: [2, 3, 1, 1], dtype: .F32,
            crc32c: checkpoint.model[0].crc32c))
        #expect(summary.tensors.last?.file == "optimizer.safetensors")
        #expect(summary.tensors[2].crc32cHex == String(format: "%08x", checkpoint.model[2].crc32c))
        let sizes = try ["model.safetensors", "optimizer.safetensors", "state.json"].map { name in
            try BinaryFile.read(path + "/" + name).count
        }
        #expect(summary.files.map(\.name) == ["model.safetensors", "optimizer.safetensors", "state.json"])
        #expect(summary.files.map(\.bytes) == sizes)
        #expect(summary.totalBytes == sizes.reduce(0, +))
    }

    @Test func summaryOfABadCheckpointIsItsError() throws {
        let directory = TemporaryDirectory()
        let path = try CheckpointStore(directory: directory.path).write(CheckpointSamples.checkpoint(step: 1))
        try FileManager.default.removeItem(atPath: path + "/model.safetensors")
        #expect(checkpointError { () throws(CheckpointError) in try CheckpointFile.summary(path) }
                == .missingFile(path: path + "/model.safetensors"))
    }

    @Test func verifyingOneGoodCheckpoint() throws {
        let directory = TemporaryDirectory()
        let path = try CheckpointStore(directory: directory.path).write(CheckpointSamples.checkpoint(step: 5))
        let verification = try CheckpointVerification.verify(path)
        #expect(!verification.isDirectoryOfCheckpoints)
        #expect(verification.outcomes.map(\.path) == [path])
        #expect(verification.allValid)
        #expect(try verification.outcomes[0].result.get().state.step == 5)
    }

    @Test func verifyingOneBadCheckpointOutsideAStore() throws {
        let directory = TemporaryDirectory()
        try CheckpointStore(directory: directory.path).write(CheckpointSamples.checkpoint(step: 5))
        let copy = directory.file("copied")
        try FileManager.default.copyItem(atPath: directory.file("step-00000005"), toPath: copy)
        try alterFile(copy + "/state.json") { $0.removeAll() }
        let verification = try CheckpointVerification.verify(copy)
        #expect(!verification.isDirectoryOfCheckpoints, "found by its files, not its name")
        #expect(verification.outcomes.map(\.failure) == [.malformedState(path: copy + "/state.json", reason: "not valid JSON")])
        #expect(!verification.allValid)
    }

    @Test func verifyingADirectoryReportsEachAndTheOneAResumeUses() throws {
        let directory = TemporaryDirectory()
        _ = try CheckpointSamples.store(directory, steps: [1, 2, 3])
        try alterFile(directory.file("step-00000003/model.safetensors")) { $0[$0.count - 1] ^= 1 }
        try FileManager.default.createDirectory(atPath: directory.file(".step-00000004.tmp-7"), withIntermediateDirectories: false)
        let verification = try CheckpointVerification.verify(directory.path)
        #expect(verification.isDirectoryOfCheckpoints)
        #expect(verification.outcomes.map(\.path) == [1, 2, 3].map { directory.file("step-0000000\($0)") })
        #expect(verification.outcomes.map { $0.failure == nil } == [true, true, false])
        guard case .checksumMismatch(_, "encoder.conv_in.weight", _, _)? = verification.outcomes[2].failure else {
            Issue.record("expected a checksum mismatch, got \(String(describing: verification.outcomes[2].failure))")
            return
        }
        #expect(verification.resumePath == directory.file("step-00000002"))
        #expect(verification.temporaries == [directory.file(".step-00000004.tmp-7")])
        #expect(!verification.allValid)
    }

    @Test func verifyingNothing() throws {
        let directory = TemporaryDirectory()
        let empty = try CheckpointVerification.verify(directory.path)
        #expect(empty.outcomes.isEmpty && empty.resumePath == nil && !empty.allValid)
        let file = directory.write([0], to: "plain")
        #expect(checkpointError { () throws(CheckpointError) in try CheckpointVerification.verify(file) } == .notACheckpoint(path: file))
        #expect(checkpointError { () throws(CheckpointError) in try CheckpointVerification.verify(directory.file("none")) }
                == .missingFile(path: directory.file("none")))
    }
}
