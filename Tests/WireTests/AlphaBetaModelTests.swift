import Testing
import Wire
import WireBenchmarks

/// The alpha-beta prediction of the ring, link rates as tc writes them, and where benchmark
/// ranks run: arithmetic and parsing only, no sockets.
@Suite struct AlphaBetaModelTests {
    @Test func ringPredictionIsTwoNMinusOneAlphasPlusTwoNMinusOneOverNOfTheBytesOverB() {
        let model = AlphaBetaModel(alpha: 0.001, bandwidth: 125e6)   // 1 ms, 1 Gbit/s
        // N = 2, 64 MiB: 2 steps of latency, the whole buffer once over the link.
        #expect(abs(model.ringAllReduceSeconds(worldSize: 2, bytes: 64 << 20) - (0.002 + Double(64 << 20) / 125e6)) < 1e-12)
        // N = 4: 6 steps, 6/4 of the buffer.
        #expect(abs(model.latencySeconds(worldSize: 4) - 0.006) < 1e-12)
        #expect(abs(model.bandwidthSeconds(worldSize: 4, bytes: 1_000_000) - 1.5 * 1_000_000 / 125e6) < 1e-12)
        // N = 256: the latency term alone is 510 ms at 1 ms per step.
        #expect(abs(model.latencySeconds(worldSize: 256) - 0.510) < 1e-12)
        // One rank moves nothing.
        #expect(model.ringAllReduceSeconds(worldSize: 1, bytes: 1 << 20) == 0)
    }

    @Test func alphaIsATinyAllReduceOverItsSteps() {
        #expect(AlphaBetaModel.alpha(fromTinyAllReduceSeconds: 0.0002, worldSize: 2) == 0.0001)
        #expect(abs(AlphaBetaModel.alpha(fromTinyAllReduceSeconds: 0.0006, worldSize: 4) - 0.0001) < 1e-15)
    }

    @Test func piecesPerChunkSayWhenTheRingPipelinesWithinAStep() {
        let mebibyte = 1 << 20
        #expect(AlphaBetaModel.piecesPerChunk(worldSize: 2, bytes: 64 * mebibyte, pieceBytes: mebibyte) == 32)
        #expect(AlphaBetaModel.piecesPerChunk(worldSize: 3, bytes: 64 * mebibyte, pieceBytes: mebibyte) == 22)
        #expect(AlphaBetaModel.piecesPerChunk(worldSize: 256, bytes: 64 * mebibyte, pieceBytes: mebibyte) == 1)
        #expect(AlphaBetaModel.piecesPerChunk(worldSize: 64, bytes: 16_500_000, pieceBytes: mebibyte) == 1)
        #expect(AlphaBetaModel.piecesPerChunk(worldSize: 2, bytes: 8, pieceBytes: mebibyte) == 1)
    }

    @Test func linkRatesReadAsTcWritesThem() {
        #expect(LinkRate.bitsPerSecond("1gbit") == 1e9)
        #expect(LinkRate.bitsPerSecond("100mbit") == 1e8)
        #expect(LinkRate.bitsPerSecond("2.5Gbit") == 2.5e9)
        #expect(LinkRate.bitsPerSecond("500kbit") == 5e5)
        #expect(LinkRate.bitsPerSecond("8000bit") == 8000)
        for bad in ["", "gbit", "1gbps", "fast", "-1gbit", "0mbit", "1 gbit", "1xbit"] {
            #expect(LinkRate.bitsPerSecond(bad) == nil, "'\(bad)'")
        }
    }

    @Test func placementFillsTheRankIntoTheLauncherAndGivesEachRankItsHost() throws {
        let placement = try RankPlacement(launcher: "ip netns exec scvae-w{rank}", hosts: "10.77.0.10, 10.77.0.11,10.77.0.12")
        #expect(placement.launcherWords(rank: 2) == ["ip", "netns", "exec", "scvae-w2"])
        #expect(placement.host(rank: 1) == "10.77.0.11")
        #expect(!placement.isLocal)
        try placement.check(worldSize: 3)
        #expect(throws: RankPlacement.Problem.tooFewHosts(given: 3, worldSize: 4)) { try placement.check(worldSize: 4) }
    }

    @Test func placementDefaultsToLoopbackAndRefusesAddressesThatCannotBeEndpoints() throws {
        let local = try RankPlacement(launcher: "  ", hosts: nil)
        #expect(local.isLocal && local == .local)
        #expect(local.launcherWords(rank: 0).isEmpty)
        #expect(local.host(rank: 5) == "127.0.0.1")
        try local.check(worldSize: 64)
        #expect(throws: RankPlacement.Problem.badHost("10.0.0.1:5555")) { try RankPlacement(hosts: "10.0.0.1:5555") }
        #expect(throws: RankPlacement.Problem.badHost("")) { try RankPlacement(hosts: "10.0.0.1,,10.0.0.2") }
    }
}
