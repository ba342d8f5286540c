import Codes
import Foundation
import Images
import Model
import TensorFiles
import Testing
@testable import Worker

/// `scvae encode` and `decode` as library calls: the stored codes, their round trip, and the
/// promise that decode(encode(x)) is `scvae reconstruct`'s image.
@Suite struct EncodeDecodeTests {
    @Test func decodingEncodedImagesGivesTheReconstructionExactly() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        let paths = try TestImages.write(3, into: images)
        let weights = try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny)
        let model = CodeModel(weights: weights)
        let file = try CodesFile.encode(try ImageInputs(path: images), with: model)
        #expect(file.files == paths)
        let codesPath = folder.file("codes.safetensors")
        try file.write(to: codesPath)
        let read = try CodesFile.read(codesPath)
        #expect(read == file)
        try read.check(against: weights, path: codesPath)

        // What `scvae reconstruct` computes for the same files (its forward pass, its batch of 8).
        let inputs = try paths.flatMap { try ImageInputs.load($0, size: 32) }
        let (expected, _) = Reconstruction.forward(SCVAEModel(config: .tiny, maxBatch: 8), parameters: weights.parameters,
                                                   inputs: inputs, batch: 3)
        var decoded: [Float] = []
        read.decode(with: CodeModel(weights: weights)) { i, image in
            #expect(i == decoded.count / model.imageFloats)
            decoded += image
        }
        #expect(decoded.count == expected.count)
        #expect(decoded == expected, "max difference \(maxAbsDifference(decoded, expected))")
    }

    /// The encode tool's own path (weights file, CodeModel, sparse storage) on the PyTorch
    /// fixture's weights and input gives the reference model's codes.
    @Test func encodeToolGivesTheReferenceCodes() throws {
        let model = CodeModel(weights: try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny))
        let (_, expected) = try TinyFixture.codes()
        var stored = SparseCodes(atoms: 128)
        stored.append(dense: model.encode(try TinyFixture.images()))
        let codes = stored.dense(rows: 0..<stored.rowCount)
        #expect(codes.map { $0 == 0 } == expected.map { $0 == 0 })
        let difference = maxAbsDifference(codes, expected), scale = maxAbs(expected)
        #expect(difference <= 1e-4 * scale, "max difference \(difference), scale \(scale)")
    }

    @Test func codesAreStoredSparselyWithTheirSourcesAndTheWeightsFingerprint() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        try TestImages.write(2, into: images)
        let weights = try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny)
        let model = CodeModel(weights: weights)
        let inputs = try ImageInputs(path: images)
        let file = try CodesFile.encode(inputs, with: model)
        let dense = model.encode(try inputs.paths.flatMap { try ImageInputs.load($0, size: 32) })
        #expect(file.codes.rowCount == 2 * 64)
        #expect(file.codes.nonzeroCount == dense.filter { $0 != 0 }.count)
        #expect(!file.codes.values.contains(0))
        #expect(file.codes.dense(rows: 0..<128) == dense)
        #expect(file.imageCodes(1) == Array(dense[(64 * 128)...]))

        try file.write(to: folder.file("codes.safetensors"))
        let stored = try SafeTensors.read(folder.file("codes.safetensors"))
        #expect(stored["indices"]?.dtype == .U16 && stored["offsets"]?.dtype == .I64 && stored["values"]?.dtype == .F32)
        #expect(stored.metadata["config"] == "tiny" && stored.metadata["atoms"] == "128" && stored.metadata["latent_side"] == "8")
        #expect(stored.metadata["files"] == "[\"\(images)/img0.png\",\"\(images)/img1.png\"]")
        // The fingerprint is what sha256sum prints for the weights file.
        let sha = Process()
        sha.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sha.arguments = [TinyFixture.weightsPath]
        let pipe = Pipe()
        sha.standardOutput = pipe
        try sha.run()
        sha.waitUntilExit()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stored.metadata["weights_sha256"] == String(printed.prefix(64)))
    }

    @Test func refusesWeightsOfAnotherConfiguration() throws {
        #expect(throws: CodesError.self) { try TrainedWeights(path: TinyFixture.weightsPath, config: .small) }
        let wrong = try #require(thrownError { _ = try TrainedWeights(path: TinyFixture.weightsPath, config: .small) })
        #expect("\(wrong)".contains(TinyFixture.weightsPath) && "\(wrong)".contains("small"), "\(wrong)")
        // Right shapes, but the metadata names another configuration.
        let folder = try TemporaryFolder()
        let relabelled = folder.file("relabelled.safetensors")
        var file = try SafeTensors.read(TinyFixture.weightsPath)
        file.metadata["config"] = "small"
        try SafeTensors.write(file.tensors, metadata: file.metadata, to: relabelled)
        #expect(throws: CodesError.weights(path: relabelled, reason: "made for configuration small, not tiny (--config)")) {
            try TrainedWeights(path: relabelled, config: .tiny)
        }
        #expect(throws: CodesError.self) { try TrainedWeights(path: folder.file("missing.safetensors"), config: .tiny) }
    }

    @Test func refusesCodesOfOtherWeights() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        try TestImages.write(1, into: images)
        let weights = try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny)
        let codesPath = folder.file("codes.safetensors")
        try CodesFile.encode(try ImageInputs(path: images), with: CodeModel(weights: weights)).write(to: codesPath)
        // The same tensors but one value: other weights.
        var changed = try SafeTensors.read(TinyFixture.weightsPath)
        let index = try #require(changed.tensors.firstIndex { $0.name == "c" })
        changed.tensors[index] = NamedTensor(name: "c", shape: changed.tensors[index].shape, floats: [try changed.tensors[index].floats()[0] + 1])
        let otherPath = folder.file("other.safetensors")
        try SafeTensors.write(changed.tensors, metadata: changed.metadata, to: otherPath)
        let other = try TrainedWeights(path: otherPath, config: .tiny)
        let codes = try CodesFile.read(codesPath)
        let error = try #require(thrownError { try codes.check(against: other, path: codesPath) }, "codes of other weights were accepted")
        if case let .codesMismatch(path, reason) = error as? CodesError {
            #expect(path == codesPath && reason.contains(otherPath) && reason.contains("weights.safetensors"), "\(reason)")
        } else {
            Issue.record("\(error)")
        }
        try codes.check(against: weights, path: codesPath)
    }

    @Test func refusesAnUnreadableImageNamingIt() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        try TestImages.write(2, into: images)
        let broken = (images as NSString).appendingPathComponent("broken.jpg")
        try BinaryFile.writeAtomically(Array("not a jpeg".utf8), to: broken)
        let model = CodeModel(weights: try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny))
        let error = try #require(thrownError { _ = try CodesFile.encode(try ImageInputs(path: images), with: model) },
                                 "a broken image was accepted")
        if case let .image(path, _) = error as? CodesError {
            #expect(path == broken)
            #expect("\(error)".contains(broken))
        } else {
            Issue.record("\(error)")
        }
        #expect(throws: CodesError.noImages(path: try folder.folder("empty"))) { try ImageInputs(path: folder.file("empty")) }
    }

    @Test func refusesFilesThatAreNotValidCodes() throws {
        let folder = try TemporaryFolder()
        #expect(throws: CodesError.codesFile(path: TinyFixture.weightsPath, reason: "not a codes file (metadata format is not scvae-codes)")) {
            try CodesFile.read(TinyFixture.weightsPath)
        }
        var codes = SparseCodes(atoms: 4)
        codes.append(dense: [0, 1.5, 0, -2, 0, 0, 0, 3])
        let file = CodesFile(codes: codes, config: "tiny", imageSize: 2, latentSide: 1, files: ["a.png", "b.png"],
                             weightsFingerprint: "00", weightsFile: "w")
        let path = folder.file("codes.safetensors")
        try file.write(to: path)
        #expect(try CodesFile.read(path) == file)
        // An atom index beyond K.
        var stored = try SafeTensors.read(path)
        let index = try #require(stored.tensors.firstIndex { $0.name == "indices" })
        stored.tensors[index].data[0] = 9
        try SafeTensors.write(stored.tensors, metadata: stored.metadata, to: path)
        let error = try #require(thrownError { _ = try CodesFile.read(path) }, "an atom beyond K was accepted")
        #expect("\(error)".contains(path) && "\(error)".contains("atom 9"), "\(error)")
        // Rows that do not match the file list.
        stored.metadata["files"] = "[\"a.png\"]"
        try SafeTensors.write(stored.tensors, metadata: stored.metadata, to: path)
        #expect(throws: CodesError.self) { try CodesFile.read(path) }
    }
}
