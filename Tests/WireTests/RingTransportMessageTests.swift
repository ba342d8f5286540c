import Testing
@testable import Wire

/// Protocol version 3: the hello's shared-memory identity and the assignment's ring transport.
@Suite struct RingTransportMessageTests {
    static func assignment(transport: RingTransportKind, next: String, own: String) -> Assignment {
        Assignment(rank: 0, worldSize: 2, generation: 1, previous: RingPeer(rank: 1, endpoint: next), next: RingPeer(rank: 1, endpoint: next),
                   configurationName: "tiny", settingsJSON: "{}", cursor: ShardCursor(epoch: 0, step: 0), globalBatch: 4, seed: 0,
                   stateSourceRank: 0, ringTransport: transport, ringEndpoint: own)
    }

    @Test func aSharedMemoryAssignmentNeedsShmEndpoints() {
        let bad = Self.assignment(transport: .sharedMemory, next: "tcp://127.0.0.1:4000", own: "shm://scvae-1-g1-r0")
        let frame = Frame.encode(kind: .assignment, generation: 1, runID: 1, payload: Message.assignment(bad).encodedPayload())
        do {
            _ = try Envelope.decode(frame)
            Issue.record("a shared-memory assignment with a tcp:// neighbour decoded")
        } catch {
            guard case let .invalidValue(field, _) = error else { Issue.record("\(error)"); return }
            #expect(field == "assignment.previous.endpoint")
        }
        let tcp = Self.assignment(transport: .tcp, next: "tcp://127.0.0.1:4000", own: "tcp://127.0.0.1:4001")
        #expect((try? Envelope.decode(Envelope(generation: 1, runID: 1, message: .assignment(tcp)).encoded())) != nil)
    }

    @Test func onlyAWorkerWithTheCapabilityOffersSharedMemory() {
        var hello = Hello(workerID: "w", host: "h", dataPlaneEndpoint: "tcp://127.0.0.1:1", datasetFingerprint: "f",
                          sharedMemoryHost: "boot=1")
        #expect(hello.sharedMemoryIdentity == nil)
        hello.capabilities = [SharedMemoryHost.capability]
        #expect(hello.sharedMemoryIdentity == "boot=1")
        hello.sharedMemoryHost = ""
        #expect(hello.sharedMemoryIdentity == nil)
    }

    @Test func thisProcessHasAStableSharedMemoryIdentity() throws {
        let identity = try #require(SharedMemoryHost.current(), "Linux with /proc and /dev/shm")
        #expect(identity == SharedMemoryHost.current())
        for part in ["boot=", ",shm=", ",pidns=", ",netns=", ",uid="] { #expect(identity.contains(part), "\(identity)") }
        #expect(!identity.contains { $0.isWhitespace })
    }
}
