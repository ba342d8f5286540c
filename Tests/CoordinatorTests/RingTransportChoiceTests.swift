import Testing
@testable import Coordinator

/// The coordinator's per-generation choice of the ring transport, without sockets.
@Suite struct RingTransportChoiceTests {
    static let hostA = "boot=a,shm=38/1,pidns=1,uid=1000"
    static let hostB = "boot=b,shm=38/1,pidns=1,uid=1000"

    static func ranks(_ hosts: String?...) -> [RingTransportChoice.Rank] {
        hosts.enumerated().map { RingTransportChoice.Rank(workerID: "w\($0.offset)", sharedMemoryHost: $0.element) }
    }

    @Test func ranksOnOneHostUseSharedMemory() throws {
        #expect(try RingTransportChoice.decide(mode: .auto, ranks: Self.ranks(Self.hostA, Self.hostA)) == .sharedMemory)
        #expect(try RingTransportChoice.decide(mode: .shm, ranks: Self.ranks(Self.hostA, Self.hostA, Self.hostA)) == .sharedMemory)
        #expect(try RingTransportChoice.decide(mode: .auto, ranks: Self.ranks(Self.hostA)).kind == .sharedMemory)
    }

    @Test func ranksOnTwoHostsUseTCPAndNameTheGroups() throws {
        let decision = try RingTransportChoice.decide(mode: .auto, ranks: Self.ranks(Self.hostA, Self.hostB, Self.hostA))
        #expect(decision == .tcp(reason: "the ranks are on 2 different hosts: {w0, w2} {w1}"))
        #expect(decision.kind == .tcp)
    }

    @Test func aRankWithoutTheCapabilityMakesTheRingTCP() throws {
        let decision = try RingTransportChoice.decide(mode: .auto, ranks: Self.ranks(Self.hostA, nil, Self.hostA))
        guard case let .tcp(reason) = decision else { Issue.record("expected tcp, got \(decision)"); return }
        #expect(reason.contains("w1") && reason.contains("cannot use shared memory"))
    }

    @Test func ringTransportTCPAlwaysUsesTCP() throws {
        #expect(try RingTransportChoice.decide(mode: .tcp, ranks: Self.ranks(Self.hostA, Self.hostA)) == .tcp(reason: "--ring-transport tcp"))
    }

    @Test func ringTransportSHMWithRanksThatCannotShareIsAClearError() {
        #expect(throws: RingTransportChoice.NotColocated.self) {
            try RingTransportChoice.decide(mode: .shm, ranks: Self.ranks(Self.hostA, Self.hostB))
        }
        do {
            _ = try RingTransportChoice.decide(mode: .shm, ranks: Self.ranks(Self.hostA, nil))
            Issue.record("--ring-transport shm accepted a rank without shared memory")
        } catch {
            #expect("\(error)".hasPrefix("--ring-transport shm: worker w1 cannot use shared memory"))
            #expect("\(error)".hasSuffix("use --ring-transport auto or tcp"))
        }
    }

    @Test func theOptionIsValidated() {
        var settings = CoordinatorSettings()
        #expect(settings.ringTransportMode == .tcp, "TCP is the default")
        settings.ringTransport = "auto"
        #expect(settings.problems().isEmpty && settings.ringTransportMode == .auto)
        settings.ringTransport = "nccl"
        #expect(settings.problems().contains { $0.contains("--ring-transport must be auto, tcp or shm") && $0.contains("nccl") })
    }
}
