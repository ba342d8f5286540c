import Foundation
import Testing
import Wire
import WireBenchmarks

/// Prints bandwidth figures; runs only with SCVAE_WIRE_BENCH=1, in release mode:
///
///     SCVAE_WIRE_BENCH=1 swift test -c release --filter WireBenchmarks
///
/// Optional: SCVAE_WIRE_BENCH_MIB (default 64), SCVAE_WIRE_BENCH_N (default 2).
/// Ranks are threads of this one process (one per core at most, docs/decisions.md); it asserts
/// nothing about time.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["SCVAE_WIRE_BENCH"] == "1"))
struct WireBenchmarks {
    @Test func allReduceAndPointToPointFigures() throws {
        let environment = ProcessInfo.processInfo.environment
        let mib = environment["SCVAE_WIRE_BENCH_MIB"].flatMap(Int.init) ?? 64
        let worldSize = environment["SCVAE_WIRE_BENCH_N"].flatMap(Int.init) ?? 2
        print("cores online: \(ProcessInfo.processInfo.activeProcessorCount), ranks: \(worldSize) threads, libzmq \(zmqLibraryVersion())")
        print(WireBenchmark.localReduce(megabytes: mib))
        for transport in ["tcp", "ipc"] {
            print(try WireBenchmark.pointToPoint(megabytes: mib, transport: transport, iterations: 9))
            print(try WireBenchmark.ringAllReduce(worldSize: worldSize, megabytes: mib, transport: transport, iterations: 9, reduce: false))
            print(try WireBenchmark.ringAllReduce(worldSize: worldSize, megabytes: mib, transport: transport, iterations: 9))
            var checked = try WireBenchmark.ringAllReduce(worldSize: worldSize, megabytes: mib, transport: transport,
                                                          settings: RingSettings(checksumData: true))
            checked.name += " with CRC32C of the data"
            print(checked)
        }
    }
}
