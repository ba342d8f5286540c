import Dataset
import Foundation
import Images
import Model
import Testing

/// `scvae report` on a real run, rendered by a real browser: headless Chromium (Debian's
/// `chromium`, which .ci/run installs) loads the page with no console error, and its screenshot
/// shows the loss curve in the loss series' colour. In the serialized process suite; disabled
/// where Chromium is not installed.
extension ProcessTests {
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test func aReportOfARunIsWrittenFromItsFolder() throws {
        let folder = try Scratch.folder("report")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Self.coordinator(["--workers", "2", "--steps", "6", "--global-batch", "4", "--checkpoint-every", "3"], folder: folder)
        #expect(run.waitForExit(seconds: 180) == 0, "\(run.output.suffix(3000))")
        // Four of the sample images in a flat folder: the picture's and `scvae reconstruct`'s input.
        let sample = try SampleData.ensure(at: Scratch.cache)
        let index = try DatasetIndex.scan(root: sample)
        try FileManager.default.createDirectory(atPath: "\(folder)/images", withIntermediateDirectories: true)
        for i in 0..<4 { try FileManager.default.copyItem(atPath: index.path(of: i), toPath: "\(folder)/images/\(i).jpg") }
        let report = try ChildProcess("scvae", ["report", folder, "--images", "\(folder)/images"], log: "\(folder)/report.log")
        #expect(report.waitForExit(seconds: 60) == 0, "\(report.output)")
        #expect(report.output.contains("6 steps, "), "\(report.output)")
        let html = try String(contentsOfFile: "\(folder)/report.html", encoding: .utf8)
        #expect(html.contains("<td>generation</td>") && html.contains("<td>final</td>"), "the run's events are listed")
        #expect(html.components(separatedBy: "<polyline").count - 1 >= 5, "loss curves, throughput and step times drawn")
        #expect(html.contains("<tr><th>stopped_early</th><td>false</td></tr>"), "\(html.prefix(3000))")
        // The picture: embedded, written beside, and its PSNR is `scvae reconstruct`'s on the same images.
        #expect(html.contains("src=\"data:image/jpeg;base64,"))
        let grid = try decodeImage([UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/samples/final.jpg"))))
        let side = ModelConfig.tiny.imageSize
        #expect(grid.width == 4 * side + 5 * 2 && grid.height == 2 * side + 3 * 2, "\(grid.width)x\(grid.height)")
        let shown = try #require(html.firstMatch(of: /mean PSNR ([0-9.]+) dB/).flatMap { Double($0.1) })
        let reconstruct = try ChildProcess("scvae", ["reconstruct", "--config", "tiny", "--weights", "\(folder)/final/model.safetensors",
                                                     "--input", "\(folder)/images", "--out", "\(folder)/reconstructed"],
                                           log: "\(folder)/reconstruct.log")
        #expect(reconstruct.waitForExit(seconds: 60) == 0, "\(reconstruct.output)")
        let measured = try #require(reconstruct.output.firstMatch(of: /4 images: mean PSNR ([0-9.]+) dB/).flatMap { Double($0.1) })
        #expect(abs(shown - measured) <= 0.01, "report \(shown) dB, scvae reconstruct \(measured) dB")

        let missing = try ChildProcess("scvae", ["report", "\(folder)/no-such-run"], log: "\(folder)/missing.log")
        #expect(missing.waitForExit(seconds: 60) != 0)
        #expect(missing.output.contains("give the --checkpoint-dir of a run"), "\(missing.output)")
    }

    @Test(.enabled(if: chromium != nil, "needs chromium (apt install chromium)"))
    func headlessChromiumRendersTheReportWithItsCurves() throws {
        let browser = try #require(Self.chromium)
        let folder = try Scratch.folder("report-browser")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // With two validations on 32 images of the sample data's held-out set.
        let run = try Self.coordinator(["--workers", "1", "--steps", "8", "--global-batch", "4", "--val-every", "4", "--val-images", "32"],
                                       folder: folder)
        #expect(run.waitForExit(seconds: 180) == 0, "\(run.output.suffix(3000))")
        #expect(try ChildProcess("scvae", ["report", folder], log: "\(folder)/report.log").waitForExit(seconds: 60) == 0)
        let html = try String(contentsOfFile: "\(folder)/report.html", encoding: .utf8)
        #expect(html.contains("Loss: training and validation") && html.contains("2 validation(s) of 32 images"), "\(html.prefix(4000))")
        #expect(html.contains("<h2>Best checkpoint (best/)</h2>") && html.contains("src=\"data:image/png;base64,"), "the best checkpoint and the newest grid")
        let shot = "\(folder)/report.png"
        let render = try ChildProcess(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                "--user-data-dir=\(folder)/profile", "--enable-logging=stderr", "--v=0",
                                                "--window-size=1400,1400", "--screenshot=\(shot)", "file://\(folder)/report.html"],
                                      log: "\(folder)/chromium.log", absolute: true)
        #expect(render.waitForExit(seconds: 120) == 0, "\(render.output.suffix(3000))")
        // Console messages of the page are logged as "CONSOLE(line)"; the page has no script, so none may appear.
        #expect(!render.output.contains("CONSOLE") && !render.output.contains("Uncaught"), "\(render.output.suffix(3000))")
        let image = try decodeImage([UInt8](try Data(contentsOf: URL(fileURLWithPath: shot))))
        #expect(image.width == 1400 && image.height == 1400)
        // The loss series is drawn in #1f77b4: count the screenshot's pixels of about that colour.
        var lossPixels = 0
        for i in stride(from: 0, to: image.pixels.count, by: 3) {
            let (r, g, b) = (Int(image.pixels[i]), Int(image.pixels[i + 1]), Int(image.pixels[i + 2]))
            if abs(r - 0x1F) < 30 && abs(g - 0x77) < 30 && abs(b - 0xB4) < 30 { lossPixels += 1 }
        }
        #expect(lossPixels > 200, "the loss curve is visible: \(lossPixels) pixels of its colour")
        if let keep = ProcessInfo.processInfo.environment["SCVAE_KEEP_REPORT_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: shot, toPath: keep)
        }
    }
}
