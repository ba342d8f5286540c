import Foundation
import Wire

/// A measured bandwidth. GB/s are 1e9 bytes per second.
public struct BandwidthFigure: Sendable, CustomStringConvertible {
    public var name: String
    public var bytes: Int
    public var worldSize: Int
    /// Median seconds of one operation over `iterations` timed runs.
    public var seconds: Double
    /// Fastest of the timed runs (on a shared machine, closest to what the transport can do).
    public var bestSeconds: Double
    public var iterations: Int

    /// Buffer bytes over time (nccl-tests' algbw).
    public var algorithmBandwidth: Double { Double(bytes) / seconds / 1e9 }
    /// algbw * 2(N-1)/N: what each rank's links carry (nccl-tests' busbw for all-reduce).
    public var busBandwidth: Double {
        worldSize > 1 ? algorithmBandwidth * Double(2 * (worldSize - 1)) / Double(worldSize) : algorithmBandwidth
    }

    public var description: String {
        let mib = Double(bytes) / Double(1 << 20)
        let bestAlgorithm = Double(bytes) / bestSeconds / 1e9
        let bestBus = worldSize > 1 ? bestAlgorithm * Double(2 * (worldSize - 1)) / Double(worldSize) : bestAlgorithm
        return "\(name): \(fixed(mib, 1)) MiB, N=\(worldSize), median \(fixed(seconds * 1000, 2)) ms of \(iterations): " +
            "algbw \(fixed(algorithmBandwidth, 3)) GB/s, busbw \(fixed(busBandwidth, 3)) GB/s " +
            "(best run: algbw \(fixed(bestAlgorithm, 3)), busbw \(fixed(bestBus, 3)))"
    }
}

/// Failures of a benchmark run.
public enum BenchmarkError: Error, Sendable {
    /// A rank thread failed with `error`.
    case rankFailed(rank: Int, error: String)
    /// A rank thread did not finish within the benchmark's time bound.
    case rankTimedOut(rank: Int)
}

/// Bandwidth measurements between threads of this process (one thread per rank).
///
/// Each rank thread has its own libzmq context (its own I/O thread), as a process would; the
/// ranks still share one address space and allocator, so figures say "(threads)" in their name.
public enum WireBenchmark {
    /// Ring all-reduce of `megabytes` MiB of float32 over `transport` ("tcp", "ipc", or "shm":
    /// `SharedMemoryRing`).
    /// `reduce: false` runs the same schedule without adding (the sends-only ceiling).
    public static func ringAllReduce(worldSize: Int, megabytes: Int, transport: String = "tcp", iterations: Int = 5,
                                     reduce: Bool = true, settings: RingSettings = RingSettings(),
                                     ioThreads: Int = 1) throws -> BandwidthFigure {
        let endpoints = ResultSlots<String>(count: worldSize)
        let results = runOnThreads(worldSize, timeout: .seconds(600)) { rank -> [Double] in
            try ringRankTimes(rank: rank, worldSize: worldSize, bytes: megabytes << 20, transport: transport,
                              iterations: iterations, reduce: reduce, settings: settings, ioThreads: ioThreads,
                              bindSuffix: "\(getpid())-\(rank)") { own in
                endpoints.set(rank, own)
                let all = endpoints.waitAll(timeout: .seconds(60)).compactMap { $0 }
                guard all.count == worldSize else { throw BenchmarkError.rankTimedOut(rank: (rank + 1) % worldSize) }
                return all
            }
        }
        return ringFigure(times: try collect(results), worldSize: worldSize, bytes: megabytes << 20,
                          transport: transport, reduce: reduce, iterations: iterations, where: "threads")
    }

    /// One rank of a ring benchmark over `bytes` of float32 (a multiple of 4): binds (tcp: on
    /// `bindHost`), publishes its endpoint through `exchange` (which
    /// returns every rank's endpoint), connects to the next rank and times `iterations` runs
    /// after one warm-up. With `settings.curveKeys` the ring runs CURVE: each rank publishes
    /// its public key beside its endpoint.
    public static func ringRankTimes(rank: Int, worldSize: Int, bytes: Int, transport: String, iterations: Int,
                                     reduce: Bool, settings: RingSettings = RingSettings(), ioThreads: Int = 1,
                                     slotCount: Int = 8, bindHost: String = "127.0.0.1", bindSuffix: String,
                                     exchange: (String) throws -> [String]) throws -> [Double] {
        let elements = bytes / MemoryLayout<Float>.size
        // A context per rank, as separate processes would have (own libzmq I/O threads).
        let context = try ZmqContext(ioThreads: ioThreads)
        let ring = try makeRing(transport: transport, rank: rank, worldSize: worldSize, context: context,
                                settings: settings, slotCount: slotCount, bindHost: bindHost, bindSuffix: bindSuffix)
        defer { ring.close() }
        // With CURVE a rank publishes "ENDPOINT PUBLICKEY" (Z85 has no spaces).
        let all = try exchange(settings.curveKeys.map { "\(ring.endpoint) \($0.publicKey)" } ?? ring.endpoint)
        let next = all[(rank + 1) % worldSize].split(separator: " ").map(String.init)
        try ring.connect(toNext: next.first ?? "", curvePublicKey: next.count > 1 ? next[1] : nil)
        var buffer = [Float](repeating: Float(rank), count: elements)
        var times: [Double] = []
        for iteration in 0..<(iterations + 1) {   // the first run warms up and is not counted
            let start = ContinuousClock.now
            try buffer.withUnsafeMutableBufferPointer { pointer in
                if reduce {
                    try ring.allReduce(pointer, generation: 1)
                } else {
                    try ring.allReduceSendsOnly(pointer, generation: 1)
                }
            }
            if iteration > 0 { times.append((ContinuousClock.now - start).inSeconds) }
        }
        return times
    }

    /// One rank's ring on `transport`: ZeroMQ over "tcp" (on `bindHost`) or "ipc", or shared memory ("shm").
    /// `slotCount`: pieces in flight per shared-memory inbox.
    static func makeRing(transport: String, rank: Int, worldSize: Int, context: ZmqContext, settings: RingSettings,
                         slotCount: Int, bindHost: String = "127.0.0.1", bindSuffix: String) throws(RingError) -> any RingTransport {
        switch transport {
        case "shm":
            #if canImport(Glibc)
            return try SharedMemoryRing(rank: rank, worldSize: worldSize, runID: 1,
                                        bindTo: "\(SharedMemoryEndpoint.scheme)scvae-bench-\(bindSuffix)", settings: settings,
                                        slotCount: slotCount)
            #else
            throw .transport(rank: rank, error: .call(operation: "shm ring", errno: 0, text: "shared memory needs Linux"))
            #endif
        case "ipc":
            return try RingCommunicator(context: context, rank: rank, worldSize: worldSize, runID: 1,
                                        bindTo: "ipc:///tmp/scvae-bench-\(bindSuffix)", settings: settings)
        default:
            return try RingCommunicator(context: context, rank: rank, worldSize: worldSize, runID: 1,
                                        bindTo: "tcp://\(bindHost):*", settings: settings)
        }
    }

    /// The figure of a ring run from every rank's times: an operation ends when the slowest rank ends.
    public static func ringFigure(times: [[Double]], worldSize: Int, bytes: Int, transport: String, reduce: Bool,
                                  iterations: Int, where place: String) -> BandwidthFigure {
        let perIteration = (0..<iterations).map { index in times.map { $0[index] }.max() ?? 0 }
        return BandwidthFigure(name: "ring \(reduce ? "all-reduce" : "sends-only") \(transport) (\(place))",
                               bytes: bytes, worldSize: worldSize, seconds: median(perIteration),
                               bestSeconds: perIteration.min() ?? .nan, iterations: iterations)
    }

    /// One thread PUSHes `megabytes` MiB (pieces of `pieceBytes`, zero-copy) to another, which
    /// answers with one short acknowledgement when it has received everything.
    public static func pointToPoint(megabytes: Int, transport: String = "tcp", iterations: Int = 5,
                                    pieceBytes: Int = 1 << 20, ioThreads: Int = 1) throws -> BandwidthFigure {
        let endpoints = ResultSlots<String>(count: 2)
        let results = runOnThreads(2, timeout: .seconds(600)) { role -> [Double] in
            try pointToPointRoleTimes(role: role, bytes: megabytes << 20, transport: transport, iterations: iterations,
                                      pieceBytes: pieceBytes, ioThreads: ioThreads,
                                      bindSuffix: "\(getpid())-\(role)") { own in
                endpoints.set(role, own)
                let all = endpoints.waitAll(timeout: .seconds(60)).compactMap { $0 }
                guard all.count == 2 else { throw BenchmarkError.rankTimedOut(rank: 1 - role) }
                return all
            }
        }
        return pointToPointFigure(times: try collect(results), bytes: megabytes << 20, transport: transport,
                                  iterations: iterations, where: "threads")
    }

    /// One side of the point-to-point benchmark: role 0 sends `bytes`, role 1 receives and
    /// acknowledges (with a few bytes, that is one round trip). tcp binds on `bindHost`.
    public static func pointToPointRoleTimes(role: Int, bytes: Int, transport: String, iterations: Int,
                                             pieceBytes: Int = 1 << 20, ioThreads: Int = 1, bindHost: String = "127.0.0.1",
                                             bindSuffix: String, exchange: (String) throws -> [String]) throws -> [Double] {
        let deadline = { ContinuousClock.now + .seconds(60) }
        let context = try ZmqContext(ioThreads: ioThreads)
        let bind = transport == "ipc" ? "ipc:///tmp/scvae-p2p-\(bindSuffix)" : "tcp://\(bindHost):*"
        let inbox = try ZmqSocket(context, type: .pull)
        try inbox.setHighWaterMarks(send: 0, receive: 0)
        let own = try inbox.bind(bind)
        let outbox = try ZmqSocket(context, type: .push)
        try outbox.setHighWaterMarks(send: 0, receive: 0)
        let all = try exchange(own)
        try outbox.connect(all[1 - role])
        defer { outbox.close(); inbox.close() }
        var times: [Double] = []
        let payload = [UInt8](repeating: 1, count: bytes)
        for iteration in 0..<(iterations + 1) {
            let start = ContinuousClock.now
            if role == 0 {
                try payload.withUnsafeBytes { raw in
                    var offset = 0
                    let released = ResultSlots<Bool>(count: 1)
                    while offset < raw.count {
                        let end = min(offset + pieceBytes, raw.count)
                        let isLast = end == raw.count
                        try outbox.sendZeroCopy(UnsafeRawBufferPointer(rebasing: raw[offset..<end]), deadline: deadline()) {
                            if isLast { released.set(0, true) }
                        }
                        offset = end
                    }
                    _ = try inbox.receive(deadline: deadline())   // acknowledgement
                    _ = released.waitAll(timeout: .seconds(60))
                }
            } else {
                var received = 0
                while received < bytes { received += try inbox.receiveMessage(deadline: deadline()).count }
                try outbox.send([1], deadline: deadline())
            }
            if iteration > 0 { times.append((ContinuousClock.now - start).inSeconds) }
        }
        return times
    }

    /// The figure of a point-to-point run from the sender's times.
    public static func pointToPointFigure(times: [[Double]], bytes: Int, transport: String, iterations: Int,
                                          where place: String) -> BandwidthFigure {
        BandwidthFigure(name: "ZeroMQ point-to-point \(transport) (\(place))", bytes: bytes, worldSize: 1,
                        seconds: median(times[0]), bestSeconds: times[0].min() ?? .nan, iterations: iterations)
    }

    /// The ring's own reduction (`target += incoming`, float32) on one thread, without any
    /// transport: bytes of `target` per second. The all-reduce cannot beat memory.
    public static func localReduce(megabytes: Int, iterations: Int = 5) -> BandwidthFigure {
        let elements = megabytes << 18
        var target = [Float](repeating: 1, count: elements)
        let incoming = [Float](repeating: 2, count: elements)
        var times: [Double] = []
        for iteration in 0..<(iterations + 1) {
            let start = ContinuousClock.now
            target.withUnsafeMutableBufferPointer { destination in
                incoming.withUnsafeBufferPointer { RingMachine.apply(.accumulate, $0, to: destination) }
            }
            if iteration > 0 { times.append((ContinuousClock.now - start).inSeconds) }
        }
        return BandwidthFigure(name: "local reduce (one thread)", bytes: elements * 4, worldSize: 1,
                               seconds: median(times), bestSeconds: times.min() ?? .nan, iterations: iterations)
    }

    private static func collect(_ results: [Result<[Double], any Error>?]) throws -> [[Double]] {
        try results.enumerated().map { rank, result in
            switch result {
            case let .success(times)?: return times
            case let .failure(error)?: throw BenchmarkError.rankFailed(rank: rank, error: "\(error)")
            case nil: throw BenchmarkError.rankTimedOut(rank: rank)
            }
        }
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

private func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}
