import Dataset
import Foundation
import Images
import Model
import Testing
import Worker

/// Validation with real processes: the figures the coordinator reports are `scvae reconstruct`'s
/// over the same folder with the `best/` weights, they do not depend on the world size, and a
/// worker killed in the middle of a validation still leaves one complete validation.
extension ProcessTests {
    /// A flat folder of `count` 64x64 JPEGs drawn like the sample data (another seed).
    static func validationFolder(_ name: String, count: Int) throws -> String {
        let folder = try Scratch.folder(name)
        for index in 0..<count {
            let jpeg = try encodeJPEG(SampleData.image(index: index, size: 64, seed: 7), quality: 90)
            try Data(jpeg).write(to: URL(fileURLWithPath: "\(folder)/val_\(String(format: "%03d", index)).jpg"))
        }
        return folder
    }

    static func validationLines(_ metrics: String) throws -> [[String: Any]] {
        try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "validation" }
    }

    @Test func validationFiguresAreReconstructsOnTheBestWeightsAndDoNotDependOnTheWorldSize() throws {
        let images = try Self.validationFolder("val-images", count: 20)
        defer { try? FileManager.default.removeItem(atPath: images) }
        var figures: [Int: [[String: Any]]] = [:]
        for workers in [2, 1, 3] {
            let folder = try Scratch.folder("validation-\(workers)")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let run = try Self.coordinator(["--workers", "\(workers)", "--steps", "10", "--global-batch", "6", "--lr", "2e-3",
                                            "--exact-reduction", "--val-data", images, "--val-every", "5",
                                            "--metrics", "\(folder)/metrics.jsonl"], folder: folder)
            #expect(run.waitForExit(seconds: 240) == 0, "\(run.output.suffix(4000))")
            let lines = try Self.validationLines("\(folder)/metrics.jsonl")
            #expect(lines.map { $0["step"] as? Int } == [5, 10] && lines.allSatisfy { $0["images"] as? Int == 20 }, "\(lines)")
            figures[workers] = lines
            guard workers == 2 else { continue }

            // best/ is the validated step with the lowest loss, and its summary says so.
            let losses = lines.map { ($0["step"] as! Int, $0["loss"] as! Double) }
            let bestStep = losses.min { $0.1 < $1.1 }!.0
            let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/best/summary.json"))) as? [String: Any])
            #expect(summary["step"] as? Int == bestStep && summary["metric"] as? String == "loss", "\(summary) of \(losses)")
            let state = try String(contentsOfFile: "\(folder)/best/state.json", encoding: .utf8)
            #expect(state.contains("\"step\" : \(bestStep)") || state.contains("\"step\":\(bestStep)"), "\(state)")

            // The coordinator's PSNR and SSIM are scvae reconstruct's on the best weights.
            let best = try WeightsFile.load("\(folder)/best/model.safetensors", layout: ParameterLayout(config: .tiny))
            let reconstruction = try Reconstruction(config: .tiny, parameters: best.parameters, inputFolder: images,
                                                    outputFolder: "\(folder)/reconstructed")
            let line = lines.first { $0["step"] as? Int == bestStep }!
            #expect(abs(reconstruction.meanPSNR - (line["psnr"] as! Double)) < 0.01, "\(reconstruction.meanPSNR) vs \(line)")
            #expect(abs(reconstruction.meanSSIM - (line["ssim"] as! Double)) < 1e-4, "\(reconstruction.meanSSIM) vs \(line)")
            #expect(reconstruction.items.count == 20)

            // Pictures: the grid of the first 16 images (two rows of 32 px tiles) and the atom usage.
            for step in [5, 10] {
                let grid = try ImageDecoder().decodeFile(atPath: "\(folder)/samples/step-\(String(format: "%08d", step)).png")
                #expect(grid.width == 16 * 32 + 17 * 2 && grid.height == 2 * 32 + 3 * 2)
            }
            #expect(FileManager.default.fileExists(atPath: "\(folder)/samples/atoms-step-00000010.png"))
            let events = try String(contentsOfFile: "\(folder)/events.jsonl", encoding: .utf8)
            #expect(events.contains("\"event\":\"validation\"") && events.contains("\"event\":\"best\""), "\(events)")

            if let python = Self.tensorBoardPython {
                let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().path
                let check = try ChildProcess(python, ["\(package)/scripts/check_tensorboard.py", "\(folder)/tensorboard", "\(folder)/metrics.jsonl"],
                                             log: "\(folder)/check.log", absolute: true)
                #expect(check.waitForExit(seconds: 120) == 0, "\(check.output)")
                #expect(check.output.contains("of 10 step(s) and 2 validation(s) compared; 0 problem(s)"), "\(check.output)")
            }
        }
        // With --exact-reduction the weights are bit-identical for any N; the validation's blocks
        // are the same images in the same forward passes, so only BLAS's thread count may differ.
        for workers in [1, 3] {
            for (a, b) in zip(figures[2] ?? [], figures[workers] ?? []) {
                for key in ["loss", "recon", "latent", "psnr", "ssim", "sparsity"] {
                    let x = a[key] as! Double, y = b[key] as! Double
                    #expect(abs(x - y) <= 1e-6 * max(abs(x), 1e-3), "N=\(workers) \(key): \(y) vs N=2 \(x)")
                }
            }
        }
    }

    @Test func aWorkerKilledDuringAValidationStillLeavesOneCompleteValidation() throws {
        let images = try Self.validationFolder("val-killed-images", count: 24)
        defer { try? FileManager.default.removeItem(atPath: images) }
        let folder = try Scratch.folder("validation-killed")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = Cluster(folder: folder, coordinatorArguments: [
            "--workers", "3", "--min-workers", "2", "--steps", "8", "--global-batch", "6", "--val-data", images,
            "--val-every", "4", "--metrics", "\(folder)/metrics.jsonl", "--checkpoint-every", "0"])
        try cluster.startCoordinator()
        try cluster.startWorker("a")
        try cluster.startWorker("b")
        // c takes 1 s per block: it is surely in the middle of its validation when killed.
        try cluster.startWorker("c", environment: ["SCVAE_TEST_VALIDATION_PAUSE": "1"])
        #expect(cluster.wait(seconds: 120) { ((try? String(contentsOfFile: "\(folder)/c-1.log", encoding: .utf8)) ?? "").contains("validating step 4") },
                "\(cluster.logs())")
        cluster.killWorker("c")
        let status = cluster.coordinator?.waitForExit(seconds: 240)
        #expect(status == 0, "\(cluster.logs())")
        let lines = try Self.validationLines("\(folder)/metrics.jsonl")
        #expect(lines.map { $0["step"] as? Int } == [4, 8], "one validation per step: \(lines)")
        #expect(lines.allSatisfy { $0["images"] as? Int == 24 && $0["skipped"] as? Int == 0 }, "each over the whole set: \(lines)")
        let logs = cluster.logs()
        #expect(logs.contains("validating step 4 again"), "the survivors redid it: \(logs)")
    }
}

/// `--timeline` on a real run: valid JSON, a track per rank with both threads, and spans that
/// nest on every thread (a span either follows the one before or lies inside it).
extension ProcessTests {
    @Test func theTimelineIsATraceWhoseSpansNestOnEveryThread() throws {
        let folder = try Scratch.folder("timeline")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Self.coordinator(["--workers", "2", "--steps", "6", "--global-batch", "4", "--bucket-mib", "1",
                                        "--val-every", "3", "--val-images", "16", "--timeline", "\(folder)/timeline.json"], folder: folder)
        #expect(run.waitForExit(seconds: 180) == 0, "\(run.output.suffix(3000))")
        let events = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/timeline.json"))) as? [[String: Any]])
        let spans = events.filter { $0["ph"] as? String == "X" }
        for rank in 0..<2 {
            let names = Set(spans.filter { $0["pid"] as? Int == rank + 1 }.compactMap { ($0["name"] as? String)?.split(separator: " ").first.map(String.init) })
            for name in ["data", "forward/backward", "all-reduce", "optimizer", "validation", "generation"] {
                #expect(names.contains(name), "rank \(rank) has \(name) spans: \(names)")
            }
            #expect(spans.contains { $0["pid"] as? Int == rank + 1 && $0["tid"] as? Int == 2 }, "rank \(rank)'s collective thread")
        }
        #expect(spans.contains { $0["pid"] as? Int == 1 && $0["name"] as? String == "checkpoint upload" }, "rank 0 uploads")
        #expect(events.contains { $0["pid"] as? Int == 0 && $0["name"] as? String == "generation" })
        var threads: [[Int]: [(start: Int, end: Int, name: String)]] = [:]
        for span in spans {
            let (pid, tid, ts, dur) = (span["pid"] as! Int, span["tid"] as! Int, span["ts"] as! Int, span["dur"] as! Int)
            threads[[pid, tid], default: []].append((ts, ts + dur, span["name"] as! String))
        }
        for (thread, list) in threads {
            var open: [(start: Int, end: Int, name: String)] = []
            for span in list.sorted(by: { ($0.start, -$0.end) < ($1.start, -$1.end) }) {
                while let top = open.last, top.end <= span.start { open.removeLast() }
                if let top = open.last {
                    #expect(span.end <= top.end, "thread \(thread): \(span) overlaps \(top) without nesting")
                }
                open.append(span)
            }
        }
    }
}
