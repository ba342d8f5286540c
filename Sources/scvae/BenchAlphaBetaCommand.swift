import ArgumentParser
import CommandOptions
import Foundation
import Model
import Wire
import WireBenchmarks

/// `scvae bench alpha-beta`: the ring all-reduce between rank processes (tcp) beside the
/// alpha-beta prediction 2(N-1)*alpha + 2(N-1)/N*S/B, with alpha and B measured in the same run
/// between ranks 0 and 1, and the prediction extrapolated to larger rings. Made for ranks in
/// network namespaces on shaped links (cluster/netns/bench-allreduce.sh); without `--launcher`
/// and `--hosts` it runs on this host's loopback. Ranks are `scvae bench allreduce-rank`
/// processes, as for `scvae bench allreduce`.
struct BenchAlphaBetaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alpha-beta",
        abstract: "Ring all-reduce time beside the alpha-beta prediction, alpha and B measured in the same run.")

    @Option(help: "World sizes to measure, comma-separated (each at least 2).")
    var workers: String = "2"

    @Option(help: "Buffer sizes in MiB of float32, comma-separated.")
    var mib: String = "1,4,16,64"

    @Option(help: "Timed iterations per world size and buffer size (after one warm-up).")
    var iterations: Int = 10

    @Option(help: "Timed iterations of the small-message measurements of alpha.")
    var latencyIterations: Int = 200

    @Option(help: "MiB of the point-to-point transfer (rank 0 to rank 1) that measures B.")
    var bandwidthMib: Int = 64

    @Option(help: "KiB per pipelined ring piece.")
    var pieceKib: Int = 1024

    @Option(help: "The links' configured rate as tc writes it (e.g. 1gbit): printed beside the measured B, with a prediction at that rate.")
    var linkRate: String?

    @Option(help: "World sizes to extrapolate the prediction to, comma-separated.")
    var extrapolate: String = "64,256"

    @Option(help: "A further alpha in ms for the extrapolation (e.g. 1 for a 1 ms link).")
    var extrapolateAlphaMs: Double?

    @Option(help: "Model configurations whose gradients (parameters x 4 bytes) the extrapolation uses, beside the largest --mib.")
    var extrapolateConfigs: String = "small,imagenet-f16"

    @Flag(help: "Allow more processes than cores (those rows are printed apart, with each rank's CPU share).")
    var oversubscribe = false

    @OptionGroup var placement: RankPlacementOptions

    func validate() throws {
        let worlds = try Self.integers(workers, option: "--workers", minimum: 2)
        _ = try Self.integers(mib, option: "--mib", minimum: 1)
        _ = try Self.integers(extrapolate, option: "--extrapolate", minimum: 2)
        guard iterations >= 1, latencyIterations >= 1, bandwidthMib >= 1, pieceKib >= 1 else {
            throw ValidationError("--iterations, --latency-iterations, --bandwidth-mib and --piece-kib must be at least 1.")
        }
        if let linkRate, LinkRate.bitsPerSecond(linkRate) == nil {
            throw ValidationError("--link-rate '\(linkRate)' is not a rate such as 1gbit, 100mbit or 500kbit.")
        }
        if let extrapolateAlphaMs, !(extrapolateAlphaMs >= 0 && extrapolateAlphaMs.isFinite) {
            throw ValidationError("--extrapolate-alpha-ms must be a number of milliseconds, 0 or more.")
        }
        _ = try configSizes()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let largest = worlds.max() ?? 2
        if largest > cores && !oversubscribe {
            throw ValidationError("--workers \(largest) is more than the \(cores) cores here; benchmarks never oversubscribe (pass --oversubscribe to run anyway).")
        }
        try placement.check(worldSize: largest)
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let worlds = try Self.integers(workers, option: "--workers", minimum: 2)
        let sizes = try Self.integers(mib, option: "--mib", minimum: 1)
        let placement = try self.placement.placement()
        let pieceArguments = ["--piece-kib", "\(pieceKib)"]
        let measure = { (kind: String, world: Int, bytes: Int, iterations: Int) throws -> ProcessRanks.Report in
            try ProcessRanks.run(kind: kind, worldSize: world, bytes: bytes, transport: "tcp", iterations: iterations,
                                 placement: placement, extra: pieceArguments)
        }
        print("machine: \(cores) cores, load average \(Self.loadAverage()); ranks are processes\(self.placement.summary); " +
              "tcp; pieces of \(pieceKib) KiB")

        // alpha: an all-reduce of one float per chunk is all latency (2(N-1) steps, N = 2).
        let tinyBytes = 2 * MemoryLayout<Float>.size
        let tiny = WireBenchmark.ringFigure(times: try measure("allreduce", 2, tinyBytes, latencyIterations).times, worldSize: 2,
                                            bytes: tinyBytes, transport: "tcp", reduce: true, iterations: latencyIterations,
                                            where: "processes")
        let alpha = AlphaBetaModel.alpha(fromTinyAllReduceSeconds: tiny.seconds, worldSize: 2)
        let ping = WireBenchmark.pointToPointFigure(times: try measure("p2p", 2, 4, latencyIterations).times, bytes: 4,
                                                    transport: "tcp", iterations: latencyIterations, where: "processes")
        print("alpha: ring all-reduce of 2 floats (one per chunk), N=2, median \(Self.ms(tiny.seconds)) ms of \(latencyIterations) " +
              "over 2 steps: alpha = \(Self.ms(alpha)) ms per step (used)")
        print("       ZeroMQ ping-pong of 4 bytes, rank 0 to 1 and back, median \(Self.ms(ping.seconds)) ms: " +
              "\(Self.ms(ping.seconds / 2)) ms one way")

        // B: one large transfer over one link.
        let transferBytes = bandwidthMib << 20
        let transfer = WireBenchmark.pointToPointFigure(times: try measure("p2p", 2, transferBytes, iterations).times,
                                                        bytes: transferBytes, transport: "tcp", iterations: iterations,
                                                        where: "processes")
        let bandwidth = Double(transferBytes) / transfer.seconds
        var bLine = "B: ZeroMQ point-to-point of \(bandwidthMib) MiB, rank 0 to 1, median \(Self.ms(transfer.seconds)) ms of " +
            "\(iterations): \(Self.gbit(bandwidth)) Gbit/s (used)"
        let configured = linkRate.flatMap(LinkRate.bitsPerSecond).map { $0 / 8 }
        if let configured, let linkRate {
            bLine += "; configured tbf rate \(linkRate) = \(Self.gbit(configured)) Gbit/s, measured B is " +
                "\(Self.percent(bandwidth / configured)) of it"
        }
        print(bLine)
        let model = AlphaBetaModel(alpha: alpha, bandwidth: bandwidth)
        print("model: T(N, S) = 2(N-1)*alpha + 2(N-1)/N * S/B, alpha \(Self.ms(alpha)) ms, B \(Self.gbit(bandwidth)) Gbit/s")

        var rows: [(world: Int, line: String)] = []
        for world in worlds {
            for size in sizes {
                let report = try measure("allreduce", world, size << 20, iterations)
                let figure = WireBenchmark.ringFigure(times: report.times, worldSize: world, bytes: size << 20, transport: "tcp",
                                                      reduce: true, iterations: iterations, where: "processes")
                let predicted = model.ringAllReduceSeconds(worldSize: world, bytes: size << 20)
                var cells = ["\(world)", "\(size) MiB", Self.ms(figure.seconds), Self.ms(figure.bestSeconds), Self.ms(predicted),
                             Self.fixed(figure.seconds / predicted, 2)]
                if let configured {
                    let atRate = AlphaBetaModel(alpha: alpha, bandwidth: configured)
                    cells.append(Self.ms(atRate.ringAllReduceSeconds(worldSize: world, bytes: size << 20)))
                }
                cells.append(report.cpuShares.map(Self.percent).joined(separator: ", "))
                rows.append((world, "| " + cells.joined(separator: " | ") + " |"))
                print("measured N=\(world) \(size) MiB: median \(Self.ms(figure.seconds)) ms, predicted \(Self.ms(predicted)) ms")
            }
        }
        var header = ["N", "S", "measured median (ms)", "best (ms)", "predicted (ms)", "measured / predicted"]
        if let linkRate { header.append("predicted at \(linkRate) (ms)") }
        header.append("CPU time / wall time per rank")
        for oversubscribed in [false, true] {
            let selected = rows.filter { ($0.world > cores) == oversubscribed }
            guard !selected.isEmpty else { continue }
            print(oversubscribed
                  ? "\noversubscribed: \(selected.map(\.world).max() ?? 0) processes at most on \(cores) cores (a check of the (N-1) terms, not performance figures)"
                  : "\nall-reduce, median of \(iterations) after one warm-up, N <= \(cores) cores")
            print(Self.tableHeader(header))
            selected.forEach { print($0.line) }
        }

        var extrapolations = [(alpha, "measured alpha")]
        if let extrapolateAlphaMs { extrapolations.append((extrapolateAlphaMs / 1000, "given alpha")) }
        let extrapolationSizes = [("\(sizes.max() ?? 1) MiB", (sizes.max() ?? 1) << 20)] + (try configSizes())
        for (extrapolationAlpha, label) in extrapolations {
            let extrapolated = AlphaBetaModel(alpha: extrapolationAlpha, bandwidth: bandwidth)
            print("\nextrapolation, \(label) (\(Self.ms(extrapolationAlpha)) ms), B \(Self.gbit(bandwidth)) Gbit/s, pieces of \(pieceKib) KiB")
            print(Self.tableHeader(["N", "S", "2(N-1) alpha (ms)", "2(N-1)/N S/B (ms)", "predicted (ms)", "pieces per chunk"]))
            for world in try Self.integers(extrapolate, option: "--extrapolate", minimum: 2) {
                for (name, bytes) in extrapolationSizes {
                    let cells = ["\(world)", name, Self.ms(extrapolated.latencySeconds(worldSize: world)),
                                 Self.ms(extrapolated.bandwidthSeconds(worldSize: world, bytes: bytes)),
                                 Self.ms(extrapolated.ringAllReduceSeconds(worldSize: world, bytes: bytes)),
                                 "\(AlphaBetaModel.piecesPerChunk(worldSize: world, bytes: bytes, pieceBytes: pieceKib << 10))"]
                    print("| " + cells.joined(separator: " | ") + " |")
                }
            }
        }
    }

    /// (label, gradient bytes) of each `--extrapolate-configs` model: its parameters as float32.
    private func configSizes() throws -> [(String, Int)] {
        try extrapolateConfigs.split(separator: ",").map { name in
            guard let config = ModelConfig.named(String(name)) else {
                throw ValidationError("--extrapolate-configs: '\(name)' is not one of \(ModelConfig.all.map(\.name).joined(separator: ", ")).")
            }
            let parameters = ParameterLayout(config: config).totalCount
            let bytes = parameters * MemoryLayout<Float>.size
            return ("\(name) (\(Self.fixed(Double(parameters) / 1e6, 2)) M parameters, \(Self.fixed(Double(bytes) / 1e6, 1)) MB)", bytes)
        }
    }

    /// The positive integers of a comma-separated option, each at least `minimum`.
    static func integers(_ text: String, option: String, minimum: Int) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? Int.min) >= minimum }) else {
            throw ValidationError("\(option) must be a comma-separated list of whole numbers, each at least \(minimum); got '\(text)'.")
        }
        return values.map { $0! }
    }

    private static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "unknown"
    }

    private static func tableHeader(_ cells: [String]) -> String {
        "| " + cells.joined(separator: " | ") + " |\n|" + String(repeating: " --- |", count: cells.count)
    }

    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    static func ms(_ seconds: Double) -> String { fixed(seconds * 1000, seconds < 0.001 ? 3 : 2) }
    static func gbit(_ bytesPerSecond: Double) -> String { fixed(bytesPerSecond * 8 / 1e9, 3) }
    static func percent(_ share: Double) -> String { share.isFinite ? "\(Int((share * 100).rounded()))%" : "?" }
}
