import Testing
@testable import Coordinator

@Suite struct MembershipTests {
    static let version: UInt16 = 4
    static let fingerprint = "fp-1"

    static func hello(_ id: String, version: UInt16 = version, fingerprint: String = fingerprint, instance: UInt64 = 1,
                      joins: UInt32 = 1, replicaStep: Int = -1, ring: String? = nil, from: String? = nil) -> Membership.Hello {
        Membership.Hello(workerID: id, protocolVersion: version, host: "h-\(id)",
                         dataPlaneEndpoint: ring ?? "tcp://127.0.0.1:9\(id.count)", datasetFingerprint: fingerprint,
                         instance: instance, joins: joins, replicaStep: replicaStep, connectedFrom: from)
    }

    /// A worker on another machine that advertises a loopback ring address would have its
    /// neighbours dial their own loopback: refused, naming both addresses.
    @Test func aLoopbackRingAddressFromAnotherMachineIsRefused() {
        var m = Self.membership(target: 2)
        #expect(m.receive(hello: Self.hello("far", ring: "tcp://127.0.0.1:4100", from: "10.0.0.3"), now: 0)
                == [.refuse(workerID: "far", .unreachableRingAddress(advertised: "tcp://127.0.0.1:4100", connectedFrom: "10.0.0.3"))])
        #expect(m.members.isEmpty)
        #expect(m.receive(hello: Self.hello("far", ring: "tcp://10.0.0.3:4100", from: "10.0.0.3"), now: 0) == [.welcome(workerID: "far")])
        #expect(m.receive(hello: Self.hello("near", ring: "tcp://127.0.0.1:4101", from: "127.0.0.1"), now: 0).first == .welcome(workerID: "near"))
        var unknown = Self.membership(target: 1)
        #expect(unknown.receive(hello: Self.hello("x", ring: "tcp://127.0.0.1:4102", from: nil), now: 0).first == .welcome(workerID: "x"),
                "without a peer address nothing can be told")
        let (_, detail) = RunController.describe(.unreachableRingAddress(advertised: "tcp://127.0.0.1:4100", connectedFrom: "10.0.0.3"))
        #expect(detail.contains("--host 10.0.0.3") && detail.contains("--ring-interface") && detail.contains("tcp://127.0.0.1:4100"))
    }

    static func membership(target: Int, minimum: Int? = nil) -> Membership {
        Membership(rules: .init(targetWorkers: target, minimumWorkers: minimum, protocolVersion: version,
                                datasetFingerprint: fingerprint, livenessDeadline: 3))
    }

    static func started(_ directives: [Membership.Directive]) -> (UInt64, [Membership.Placement], Int, Int)? {
        for case let .startGeneration(generation, placements, resumeStep, source) in directives {
            return (generation, placements, resumeStep, source)
        }
        return nil
    }

    @Test func rendezvousWaitsForTheWholeWorldThenFormsARing() throws {
        var m = Self.membership(target: 3)
        #expect(m.receive(hello: Self.hello("a"), now: 0) == [.welcome(workerID: "a")])
        #expect(m.receive(hello: Self.hello("b"), now: 0) == [.welcome(workerID: "b")])
        let directives = m.receive(hello: Self.hello("c"), now: 0)
        let (generation, placements, resume, source) = try #require(Self.started(directives))
        #expect(generation == 1 && resume == -1 && source == 0)
        #expect(placements.map(\.workerID) == ["a", "b", "c"])
        #expect(placements.map(\.rank) == [0, 1, 2])
        #expect(placements[0].previousWorkerID == "c" && placements[0].nextWorkerID == "b")
        #expect(placements[2].nextWorkerID == "a")
    }

    @Test func wrongVersionWrongDataDuplicatesAndExtrasAreRefusedAndTheRunGoesOn() throws {
        var m = Self.membership(target: 2)
        #expect(m.receive(hello: Self.hello("old", version: 3), now: 0)
                == [.refuse(workerID: "old", .protocolVersionMismatch(worker: 3, coordinator: 4))])
        #expect(m.receive(hello: Self.hello("x", fingerprint: "other"), now: 0)
                == [.refuse(workerID: "x", .datasetMismatch(worker: "other", coordinator: "fp-1"))])
        _ = m.receive(hello: Self.hello("a"), now: 0)
        #expect(m.receive(hello: Self.hello("a", instance: 2), now: 0) == [.refuse(workerID: "a", .duplicateWorkerID)],
                "another process with a live worker's id is refused")
        #expect(m.receive(hello: Self.hello("a"), now: 0) == [.welcome(workerID: "a")], "a repeated hello of the same join is welcomed again")
        #expect(m.receive(hello: Self.hello("a", fingerprint: "other", instance: 2), now: 0)
                == [.refuse(workerID: "a", .datasetMismatch(worker: "other", coordinator: "fp-1"))],
                "checks come before the duplicate: the live worker is untouched")
        #expect(m.members["a"]?.status == .joining && m.members["a"]?.instance == 1)
        #expect(Self.started(m.receive(hello: Self.hello("b"), now: 0)) != nil)
        #expect(m.receive(hello: Self.hello("c"), now: 0) == [.refuse(workerID: "c", .runFull(workers: 2))])
        #expect(m.ranked.map(\.id) == ["a", "b"])
    }

    @Test func aSilentWorkerIsDeclaredDownAndSurvivorsResumeFromTheMostAdvancedReplica() throws {
        var m = Self.membership(target: 3, minimum: 2)
        for id in ["a", "b", "c"] { _ = m.receive(hello: Self.hello(id), now: 0) }
        m.applied(step: 4, by: "a", generation: 1, now: 1)
        m.applied(step: 5, by: "b", generation: 1, now: 1)
        m.applied(step: 5, by: "c", generation: 1, now: 1)
        // b and a keep talking; c falls silent.
        m.heard(from: "a", now: 3.5)
        m.heard(from: "b", now: 3.5)
        #expect(m.tick(now: 3.9).isEmpty)
        let directives = m.tick(now: 4.2)
        #expect(directives.first == .declaredDown(workerIDs: ["c"], generation: 1))
        let (generation, placements, resume, source) = try #require(Self.started(directives))
        #expect(generation == 2)
        #expect(placements.map(\.workerID) == ["a", "b"])
        #expect(resume == 5, "b applied step 5, a only 4: the new generation resumes after 5")
        #expect(placements[source].workerID == "b")
        #expect(placements[0].nextWorkerID == "b" && placements[1].nextWorkerID == "a")
    }

    @Test func reportsFromAnOlderGenerationDoNotCount() {
        var m = Self.membership(target: 2, minimum: 1)
        for id in ["a", "b"] { _ = m.receive(hello: Self.hello(id), now: 0) }
        _ = m.lost("b", now: 1)
        #expect(m.generation == 2)
        m.applied(step: 9, by: "a", generation: 1, now: 1)
        #expect(m.members["a"]?.appliedStep == -1)
        m.applied(step: 2, by: "a", generation: 2, now: 1)
        #expect(m.members["a"]?.appliedStep == 2)
    }

    @Test func belowTheMinimumTrainingPausesAndAJoinerResumesIt() throws {
        var m = Self.membership(target: 2, minimum: 2)
        for id in ["a", "b"] { _ = m.receive(hello: Self.hello(id), now: 0) }
        m.applied(step: 7, by: "a", generation: 1, now: 1)
        m.applied(step: 7, by: "b", generation: 1, now: 1)
        let down = m.lost("b", now: 2)
        #expect(down.contains(.pause(liveWorkers: 1, minimumWorkers: 2)))
        #expect(m.ranked.isEmpty)
        // b restarts under the same id: admitted again, and the run resumes from a's step 7.
        let directives = m.receive(hello: Self.hello("b"), now: 3)
        #expect(directives.first == .welcome(workerID: "b"))
        let (generation, placements, resume, source) = try #require(Self.started(directives))
        #expect(generation == 2 && resume == 7)
        #expect(placements[source].workerID == "a")
        #expect(placements.map(\.workerID) == ["a", "b"])
    }

    @Test func aJoinerFillsAGapWithANewGeneration() throws {
        var m = Self.membership(target: 3, minimum: 2)
        for id in ["a", "b", "c"] { _ = m.receive(hello: Self.hello(id), now: 0) }
        _ = m.lost("a", now: 1)
        #expect(m.generation == 2)
        let (generation, placements, _, _) = try #require(Self.started(m.receive(hello: Self.hello("d"), now: 2)))
        #expect(generation == 3)
        #expect(placements.map(\.workerID) == ["b", "c", "d"])
    }
}
