import Foundation
import Testing

/// A run's TensorBoard folder read back by TensorBoard's own event reader (the `tensorboard`
/// package scripts/setup.sh installs in .build/python-tools): every scalar of every step equals
/// the --metrics JSON line's figure. In the serialized process suite.
extension ProcessTests {
    static let tensorBoardPython: String? = {
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let python = package + "/.build/python-tools/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python),
              let probe = try? ChildProcess(python, ["-c", "import tensorboard.backend.event_processing.event_accumulator"],
                                            log: NSTemporaryDirectory() + "scvae-tb-probe-\(getpid()).log", absolute: true),
              probe.waitForExit(seconds: 60) == 0 else { return nil }
        return python
    }()

    @Test(.enabled(if: tensorBoardPython != nil, "needs the tensorboard package (scripts/setup.sh)"))
    func tensorBoardReadsBackEveryScalarOfTheMetrics() throws {
        let python = try #require(Self.tensorBoardPython)
        let folder = try Scratch.folder("tensorboard")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Self.coordinator(["--workers", "2", "--steps", "4", "--global-batch", "4", "--metrics", "\(folder)/metrics.jsonl"],
                                       folder: folder)
        #expect(run.waitForExit(seconds: 180) == 0, "\(run.output.suffix(3000))")
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let check = try ChildProcess(python, ["\(package)/scripts/check_tensorboard.py", "\(folder)/tensorboard", "\(folder)/metrics.jsonl"],
                                     log: "\(folder)/check.log", absolute: true)
        #expect(check.waitForExit(seconds: 120) == 0, "\(check.output)")
        #expect(check.output.contains("of 4 step(s) and 0 validation(s) compared; 0 problem(s)"), "\(check.output)")
    }
}
