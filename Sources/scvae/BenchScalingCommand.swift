import ArgumentParser
import CommandOptions
import Foundation
import Model

/// `scvae bench scaling`: the training step profiled part by part on one thread and on
/// `--threads` threads, and the scaling model (Model/ScalingModel.swift) that projects it to more
/// threads than this machine has.
struct BenchScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Profile the training step on 1 and --threads threads, part by part, and project it to more threads.",
        discussion: """
            Each part of the step is timed on the calling thread: the jobs of the model's own thread \
            pool (by source file and number of chunks), OpenBLAS calls (by source file), and the \
            serial regions (optimizer, zeroing, finiteness check). The projection scales a pool job by \
            whole chunks per thread and its measured efficiency, OpenBLAS by Amdahl's law fitted to \
            its two timings, and keeps serial work as it is. Run it on a quiet machine, with \
            --threads at most the number of cores.
            """)

    @OptionGroup var model: ModelOptions

    @Option(help: "Images per step.")
    var batch: Int = 16

    @Option(help: "Timed steps per thread count (after one warm-up step).")
    var steps: Int = 3

    @Option(help: "Thread counts to project to, comma-separated.")
    var project: String = "4,8,16,32,64"

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard batch >= 1, steps >= 1 else { throw ValidationError("--batch and --steps must be at least 1.") }
        guard model.threads >= 2 else {
            throw ValidationError("--threads must be at least 2: the model is fitted to a measurement on more than one thread.")
        }
        guard (try? projectedThreads()) != nil else {
            throw ValidationError("--project takes thread counts of at least 1 separated by commas, e.g. 4,8,16; got '\(project)'.")
        }
    }

    func projectedThreads() throws -> [Int] {
        let counts = project.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 }) else { throw ValidationError("bad --project") }
        return counts.map { $0! }
    }

    func run() throws {
        logging.bootstrap()
        let config = model.prepare()
        let threads = model.threads
        let one = StepProfile(), many = StepProfile()
        BLAS.setThreads(1)
        let single = try StepBenchmark.run(config: config, batch: batch, steps: steps, threads: 1, profile: one)
        BLAS.setThreads(threads)
        let multi = try StepBenchmark.run(config: config, batch: batch, steps: steps, threads: threads, profile: many)
        let scaling = ScalingModel(one: one, many: many, measuredThreads: threads)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if threads > cores {
            print("warning: \(threads) threads on \(cores) cores: the threads share cores, and the model is fitted to that")
        }
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; config \(config.name), batch \(batch), \(steps) timed steps per thread count")
        print("kernels: \(KernelVariant.selected); OpenBLAS kernels: \(BLAS.coreName)")
        print(String(format: "step (median): 1 thread %.1f ms, %d threads %.1f ms: %.2fx", single.medianSeconds * 1000, threads,
                     multi.medianSeconds * 1000, single.medianSeconds / multi.medianSeconds))
        print(ScalingReport.table(scaling))
        print(ScalingReport.projection(scaling, threads: try projectedThreads(), batch: batch))
    }
}

/// The text of `scvae bench scaling`.
enum ScalingReport {
    /// Parts under this share of the one-thread step are summed into one line.
    static let smallShare = 0.005

    static func kindText(_ kind: StepProfile.Kind) -> String {
        switch kind {
        case .pool(let chunks): return "pool, \(chunks) chunk\(chunks == 1 ? "" : "s")"
        case .blas: return "OpenBLAS"
        case .serial: return "serial"
        }
    }

    /// `text` padded with spaces to `width` (left-aligned, or right-aligned for numbers).
    static func cell(_ text: String, _ width: Int, right: Bool = false) -> String {
        let pad = String(repeating: " ", count: max(0, width - text.count))
        return right ? pad + text : text + pad
    }

    static func row(_ part: String, _ kind: String, _ one: Double, _ many: Double, _ share: String, _ scaling: String) -> String {
        [cell(part, 40), cell(kind, 18), cell(String(format: "%.1f", one * 1000), 9, right: true),
         cell(String(format: "%.1f", many * 1000), 9, right: true), cell(share, 7, right: true), " " + scaling]
            .joined(separator: " ")
    }

    static func table(_ model: ScalingModel) -> String {
        let total = model.oneThreadSeconds, t = model.measuredThreads
        var lines = [[cell("part", 40), cell("kind", 18), cell("T=1 ms", 9, right: true), cell("T=\(t) ms", 9, right: true),
                      cell("share", 7, right: true), " scaling at T=\(t)"].joined(separator: " ")]
        var small = (count: 0, one: 0.0, many: 0.0)
        for part in model.parts {
            guard part.one >= smallShare * total else {
                small = (small.count + 1, small.one + part.one, small.many + part.many)
                continue
            }
            lines.append(row(part.label, kindText(part.kind), part.one, part.many,
                             String(format: "%.1f%%", 100 * part.one / total), scalingText(model, part)))
        }
        if small.count > 0 {
            lines.append(row("(\(small.count) smaller parts)", "", small.one, small.many,
                             String(format: "%.1f%%", 100 * small.one / total), ""))
        }
        lines.append(row("all parts", "", total, model.measuredSeconds, "100%", ""))
        return lines.joined(separator: "\n")
    }

    static func scalingText(_ model: ScalingModel, _ part: ScalingModel.Part) -> String {
        let t = model.measuredThreads
        let speedup = part.many > 0 ? String(format: "%.2fx", part.one / part.many) : "-"
        switch part.kind {
        case .serial: return speedup
        case .blas: return String(format: "%@, serial fraction %.2f", speedup, ScalingModel.serialFraction(part, threads: t))
        case .pool: return String(format: "%@, efficiency %.2f", speedup, ScalingModel.efficiency(part, threads: t))
        }
    }

    static func projection(_ model: ScalingModel, threads: [Int], batch: Int) -> String {
        let one = model.oneThreadSeconds
        var lines = ["projection (ms per step, images/s, speedup over 1 thread):"]
        for count in Array(Set([1, model.measuredThreads] + threads)).sorted() {
            let seconds = model.projectedSeconds(threads: count)
            let note = count == model.measuredThreads ? String(format: " (measured %.1f ms, mean of the steps)", model.measuredSeconds * 1000) : ""
            lines.append(String(format: "  T=%-3d %9.1f ms %8.2f images/s %6.2fx%@", count, seconds * 1000, Double(batch) / seconds,
                                one / seconds, note as NSString))
        }
        let serial = model.parts.filter { $0.kind == .serial }.reduce(0) { $0 + $1.one }
        lines.append(String(format: "floor (no thread count goes under it): %.1f ms per step, at most %.1fx; serial regions %.1f ms (%.1f%% of one thread's step)",
                            model.floorSeconds * 1000, one / model.floorSeconds, serial * 1000, 100 * serial / one))
        if let widest = threads.max() {
            let limited = model.parts.compactMap { part -> (String, Int, Double)? in
                guard case .pool(let chunks) = part.kind, chunks < widest, part.one >= smallShare * one else { return nil }
                return (part.label, chunks, part.one)
            }
            if !limited.isEmpty {
                let time = limited.reduce(0) { $0 + $1.2 }
                let names = limited.prefix(4).map { "\($0.0) (\($0.1))" }.joined(separator: ", ")
                lines.append(String(format: "pool jobs with fewer chunks than %d threads: %.1f%% of one thread's step: %@", widest,
                                    100 * time / one, names as NSString))
            }
        }
        return lines.joined(separator: "\n")
    }
}
