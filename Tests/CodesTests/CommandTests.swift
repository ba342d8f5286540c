import Codes
import Foundation
import Images
import TensorFiles
import Testing

/// The `scvae` executable of this build, run on the tiny fixture: what a user sees.
enum Scvae {
    static let path: String? = {
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        var candidates: [String] = []
        if let bundle = Bundle.main.executablePath { candidates.append((bundle as NSString).deletingLastPathComponent) }
        candidates += ["release", "debug"].map { "\(package)/.build/\($0)" }
        return candidates.map { "\($0)/scvae" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Runs scvae with `arguments`; returns the exit status and everything it printed. Bounded by `timeout` seconds.
    static func run(_ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String) {
        let executable = try #require(path, "scvae not built; run `swift build -c release`")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("scvae-codes-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("scvae \(arguments.joined(separator: " ")) ran over \(timeout) s")
        }
        try handle.close()
        return (process.terminationStatus, try String(contentsOf: log, encoding: .utf8))
    }
}

@Suite(.enabled(if: Scvae.path != nil, "scvae is not built")) struct CommandTests {
    /// Two tools agree exactly: the images `decode` writes from `encode`'s codes are the ends of
    /// the strip `interpolate` draws between the same two images (both are their reconstructions;
    /// the library tests check that against `scvae reconstruct`'s forward pass in one process).
    @Test func decodedCodesAreTheEndsOfTheInterpolationStrip() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        let paths = try TestImages.write(2, into: images)
        let codes = folder.file("codes.safetensors"), out = folder.file("decoded"), strip = folder.file("strip.png")
        let encoded = try Scvae.run(["encode", "--weights", TinyFixture.weightsPath, "--input", images, "--out", codes])
        #expect(encoded.status == 0 && encoded.output.contains("2 images, 64 positions each"), "\(encoded.output)")
        let decoded = try Scvae.run(["decode", "--codes", codes, "--weights", TinyFixture.weightsPath, "--out", out])
        #expect(decoded.status == 0, "\(decoded.output)")
        let interpolated = try Scvae.run(["interpolate", "--weights", TinyFixture.weightsPath, paths[0], paths[1], "--steps", "3", "--out", strip])
        #expect(interpolated.status == 0, "\(interpolated.output)")
        let picture = try decodeImage(try BinaryFile.read(strip))
        let gap = ImageGrid.gap
        #expect(picture.width == 3 * 32 + 4 * gap && picture.height == 32 + 2 * gap)
        for (i, column) in [(0, 0), (1, 2)] {
            let written = try decodeImage(try BinaryFile.read("\(out)/img\(i).png"))
            #expect(written.width == 32 && written.height == 32)
            let left = gap + column * (32 + gap)
            var tile: [UInt8] = []
            for y in 0..<32 {
                let from = ((gap + y) * picture.width + left) * 3
                tile += picture.pixels[from..<(from + 32 * 3)]
            }
            let differing = zip(tile, written.pixels).filter { $0 != $1 }.count
            #expect(differing == 0, "img\(i): \(differing) of \(tile.count) bytes differ")
        }
    }

    @Test func toolsRefuseBadInputsNamingTheFile() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        let paths = try TestImages.write(1, into: images)
        let weights = TinyFixture.weightsPath
        // Weights of another configuration.
        for arguments in [["encode", "--input", images, "--out", folder.file("c.safetensors")],
                          ["interpolate", paths[0], paths[0], "--out", folder.file("s.png")],
                          ["traverse", paths[0], "--top", "2", "--out", folder.file("t.png")],
                          ["segment", "--input", images, "--clusters", "2", "--out", folder.file("seg")]] {
            let result = try Scvae.run(arguments + ["--weights", weights, "--config", "small"])
            #expect(result.status != 0 && result.output.contains(weights) && result.output.contains("small"), "\(arguments[0]): \(result.output)")
        }
        // An unreadable image.
        let broken = folder.file("broken.png")
        try BinaryFile.writeAtomically([0x89, 0x50, 0x4E, 0x47, 1, 2, 3], to: broken)
        for arguments in [["encode", "--input", broken, "--out", folder.file("c.safetensors")],
                          ["interpolate", paths[0], broken, "--out", folder.file("s.png")],
                          ["traverse", broken, "--top", "2", "--out", folder.file("t.png")],
                          ["segment", "--input", broken, "--clusters", "1", "--out", folder.file("seg")]] {
            let result = try Scvae.run(arguments + ["--weights", weights])
            #expect(result.status != 0 && result.output.contains(broken), "\(arguments[0]): \(result.output)")
        }
        // Codes of other weights.
        let codes = folder.file("codes.safetensors")
        #expect(try Scvae.run(["encode", "--weights", weights, "--input", images, "--out", codes]).status == 0)
        var changed = try SafeTensors.read(weights)
        changed.metadata["note"] = "another file"
        let other = folder.file("other.safetensors")
        try SafeTensors.write(changed.tensors, metadata: changed.metadata, to: other)
        let refused = try Scvae.run(["decode", "--codes", codes, "--weights", other, "--out", folder.file("out")])
        #expect(refused.status != 0 && refused.output.contains(codes) && refused.output.contains(other), "\(refused.output)")
        let stats = try Scvae.run(["codes", "stats", "--codes", weights, "--out", folder.file("stats")])
        #expect(stats.status != 0 && stats.output.contains(weights) && stats.output.contains("not a codes file"), "\(stats.output)")
    }
}
