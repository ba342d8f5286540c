import ArgumentParser
import CommandOptions
import Foundation
import Report

/// `scvae report DIR`: writes DIR/report.html from the run's files.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: one self-contained page (no network) with the run's summary, curves, step times and events.")

    @Argument(help: "The run's folder (its --checkpoint-dir).")
    var runDirectory: String

    @Option(help: "The run's step metrics, if the run wrote them elsewhere (default: RUN_DIR/metrics.jsonl).")
    var metrics: String?

    @Option(help: "Where to write the page (default: RUN_DIR/report.html).")
    var out: String?

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let record: RunRecord
        do { record = try RunRecord.load(folder: runDirectory, metricsFile: metrics) } catch {
            throw ValidationError(error.description)
        }
        let path = out ?? (runDirectory as NSString).appendingPathComponent("report.html")
        do {
            try ReportPage.render(record).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ValidationError("cannot write \(path): \(error.localizedDescription)")
        }
        print("wrote \(path): \(record.steps.count) steps, \(record.events.count) events\(record.unreadableLines > 0 ? ", \(record.unreadableLines) unreadable line(s) left out" : "")")
    }
}
