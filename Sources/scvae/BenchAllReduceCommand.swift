import ArgumentParser
import CommandOptions
import Foundation
import Wire
import WireBenchmarks

/// `scvae bench allreduce`: N processes on this machine run the ring all-reduce; the same run
/// measures the sends-only ring (the transport's ceiling) and raw ZeroMQ point-to-point between
/// two processes (for `--transport shm`, the one-thread reduction instead: memory's ceiling). Ranks are child processes of this executable (`scvae bench allreduce-rank`)
/// that exchange endpoints through files in a private temporary folder. `--launcher` and `--hosts`
/// start each rank elsewhere, e.g. in a network namespace of its own bound on its address.
struct BenchAllReduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Ring all-reduce bandwidth between N processes, beside sends-only ring and raw ZeroMQ point-to-point figures.")

    @Option(help: "Number of processes (ranks).")
    var workers: Int = 2

    @Option(help: "Buffer size in MiB of float32.")
    var mib: Int = 64

    @Option(help: "Transport between processes: tcp, ipc (ZeroMQ) or shm (shared memory, same host).")
    var transport: BenchTransport = .tcp

    @Option(help: "Timed iterations (after one warm-up).")
    var iterations: Int = 10

    @Option(help: "KiB per pipelined ring piece.")
    var pieceKib: Int = 1024

    @Option(help: "Pieces in flight per shared-memory inbox (shm only).")
    var slots: Int = 8

    @Flag(help: "Allow more processes than cores (figures are then not representative).")
    var oversubscribe = false

    @Flag(help: "Encrypt and authenticate ring traffic with CURVE (fresh keys per rank); the point-to-point figure stays plain.")
    var curve = false

    @OptionGroup var placement: RankPlacementOptions

    func validate() throws {
        guard workers >= 2 else { throw ValidationError("--workers must be at least 2.") }
        guard mib >= 1, iterations >= 1, pieceKib >= 1, slots >= 1 else {
            throw ValidationError("--mib, --iterations, --piece-kib and --slots must be at least 1.")
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if workers > cores && !oversubscribe {
            throw ValidationError("--workers \(workers) is more than the \(cores) cores here; benchmarks never oversubscribe (pass --oversubscribe to run anyway).")
        }
        try placement.check(worldSize: workers)
        if !placement.isLocal && transport != .tcp {
            throw ValidationError("--launcher and --hosts place ranks on other hosts: use --transport tcp.")
        }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("machine: \(cores) cores; \(workers) processes\(placement.summary); \(mib) MiB float32; transport \(transport.rawValue); " +
              "pieces of \(pieceKib) KiB" + (transport == .shm ? ", \(slots) slots per inbox" : "") +
              (curve ? "; ring CURVE on" : ""))
        var kinds = [("p2p", 2), ("sends-only", workers), ("allreduce", workers)]
        if transport == .shm {
            // No ZeroMQ point-to-point figure for shared memory: the reduction itself is the ceiling.
            print(WireBenchmark.localReduce(megabytes: mib, iterations: iterations))
            kinds.removeFirst()
        }
        for (kind, world) in kinds {
            let ringCurve = curve && kind != "p2p" && transport != .shm
            let times = try ProcessRanks.run(kind: kind, worldSize: world, bytes: mib << 20, transport: transport.rawValue,
                                             iterations: iterations, placement: try placement.placement(),
                                             extra: ["--piece-kib", "\(pieceKib)", "--slots", "\(slots)"] + (ringCurve ? ["--curve"] : [])).times
            var figure: BandwidthFigure
            if kind == "p2p" {
                figure = WireBenchmark.pointToPointFigure(times: times, bytes: mib << 20, transport: transport.rawValue,
                                                          iterations: iterations, where: "processes")
            } else {
                figure = WireBenchmark.ringFigure(times: times, worldSize: world, bytes: mib << 20, transport: transport.rawValue,
                                                  reduce: kind == "allreduce", iterations: iterations, where: "processes")
            }
            if ringCurve { figure.name += " CURVE" }
            print(figure)
        }
    }
}

/// `scvae bench allreduce --transport`.
enum BenchTransport: String, CaseIterable, ExpressibleByArgument {
    /// ZeroMQ over TCP.
    case tcp
    /// ZeroMQ over Unix domain sockets.
    case ipc
    /// Shared memory (ranks on one host).
    case shm
}

/// One rank of `scvae bench allreduce`, started by it; not for people.
struct BenchAllReduceRankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "allreduce-rank", shouldDisplay: false)

    @Option var kind: String
    @Option var rank: Int
    @Option var world: Int
    @Option var bytes: Int
    @Option var transport: String
    @Option var iterations: Int
    @Option var folder: String
    @Flag var curve = false
    @Option var pieceKib: Int = 1024
    @Option var slots: Int = 8
    @Option var host: String = "127.0.0.1"

    func run() throws {
        // CPU share from the moment every rank is known: connect, warm-up and timed runs.
        var usage: ProcessUsage?
        let exchange = { (own: String) throws -> [String] in
            try ProcessRanks.publish(own, rank: rank, in: folder)
            defer { usage = ProcessUsage() }
            return try ProcessRanks.gather(worldSize: world, in: folder)
        }
        let suffix = "\(ProcessInfo.processInfo.processIdentifier)-\(rank)"
        let times: [Double]
        switch kind {
        case "p2p":
            times = try WireBenchmark.pointToPointRoleTimes(role: rank, bytes: bytes, transport: transport, iterations: iterations,
                                                            bindHost: host, bindSuffix: suffix, exchange: exchange)
        default:
            times = try WireBenchmark.ringRankTimes(rank: rank, worldSize: world, bytes: bytes, transport: transport,
                                                    iterations: iterations, reduce: kind == "allreduce",
                                                    settings: RingSettings(pieceBytes: pieceKib << 10,
                                                                           curveKeys: curve ? try CurveKeyPair.generate() : nil),
                                                    slotCount: slots, bindHost: host,
                                                    bindSuffix: suffix, exchange: exchange)
        }
        try times.map { "\($0)" }.joined(separator: "\n")
            .write(toFile: "\(folder)/times-\(rank)", atomically: true, encoding: .utf8)
        try "\(usage?.cpuShare() ?? .nan)".write(toFile: "\(folder)/cpu-\(rank)", atomically: true, encoding: .utf8)
    }
}

/// Starting rank processes and exchanging endpoints through files.
enum ProcessRanks {
    static let timeout: TimeInterval = 600

    /// What the ranks of one run reported.
    struct Report {
        /// Each rank's timed iterations, in seconds.
        var times: [[Double]]
        /// Each rank process's CPU time (user + system, all its threads) over wall time, from
        /// when it knew every rank's endpoint to its end (connect, warm-up, timed runs).
        var cpuShares: [Double]
    }

    /// Starts `worldSize` rank processes (placed by `placement`) and returns what each reported.
    static func run(kind: String, worldSize: Int, bytes: Int, transport: String, iterations: Int,
                    placement: RankPlacement = .local, extra: [String] = []) throws -> Report {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("scvae-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var processes: [Process] = []
        defer { for process in processes where process.isRunning { process.terminate() } }
        for rank in 0..<worldSize {
            let process = Process()
            let arguments = ["bench", "allreduce-rank", "--kind", kind, "--rank", "\(rank)", "--world", "\(worldSize)",
                             "--bytes", "\(bytes)", "--transport", transport, "--iterations", "\(iterations)", "--folder", folder,
                             "--host", placement.host(rank: rank)] + extra
            let launcher = placement.launcherWords(rank: rank)
            if launcher.isEmpty {
                process.executableURL = executable
                process.arguments = arguments
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = launcher + [executable.path] + arguments
            }
            try process.run()
            processes.append(process)
        }
        let deadline = Date().addingTimeInterval(timeout)
        for (rank, process) in processes.enumerated() {
            while process.isRunning && Date() < deadline { usleep(20_000) }
            guard !process.isRunning else { throw ValidationError("rank \(rank) of the \(kind) benchmark did not finish in \(Int(timeout)) s") }
            guard process.terminationStatus == 0 else {
                throw ValidationError("rank \(rank) of the \(kind) benchmark failed (exit \(process.terminationStatus))")
            }
        }
        let times = try (0..<worldSize).map { rank in
            try String(contentsOfFile: "\(folder)/times-\(rank)", encoding: .utf8)
                .split(separator: "\n").compactMap { Double($0) }
        }
        let cpuShares = (0..<worldSize).map { rank in
            (try? String(contentsOfFile: "\(folder)/cpu-\(rank)", encoding: .utf8)).flatMap(Double.init) ?? .nan
        }
        return Report(times: times, cpuShares: cpuShares)
    }

    /// Writes this rank's endpoint where the others look for it (atomically).
    static func publish(_ endpoint: String, rank: Int, in folder: String) throws {
        try endpoint.write(toFile: "\(folder)/endpoint-\(rank)", atomically: true, encoding: .utf8)
    }

    /// Every rank's endpoint, waiting (bounded) until all have published.
    static func gather(worldSize: Int, in folder: String) throws -> [String] {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let endpoints = (0..<worldSize).map { try? String(contentsOfFile: "\(folder)/endpoint-\($0)", encoding: .utf8) }
            if endpoints.allSatisfy({ $0 != nil }) { return endpoints.map { $0! } }
            usleep(10_000)
        }
        throw ValidationError("ranks did not all publish an endpoint within 60 s")
    }
}
