import Testing
@testable import Worker

@Suite struct WorkerSettingsTests {
    @Test func defaultsAreUsable() {
        #expect(WorkerSettings().problems().isEmpty)
    }

    @Test func badEndpointAndThreadsAreNamed() {
        var s = WorkerSettings()
        s.coordinator = "http://example"
        s.threads = 0
        let problems = s.problems()
        #expect(problems.count == 2)
        #expect(problems.contains { $0.contains("--coordinator") })
        #expect(problems.contains { $0.contains("--threads") })
    }

    @Test func theRingAddressComesFromHostInterfaceOrTheRouteToTheCoordinator() throws {
        var settings = WorkerSettings()
        settings.coordinator = "tcp://127.0.0.1:5555"
        let routed = try settings.resolveRingAddress().get()
        #expect(routed.address == "127.0.0.1" && routed.source == "the address that reaches the coordinator")
        settings.ringInterface = "lo"
        #expect(try settings.resolveRingAddress().get().address == "127.0.0.1")
        settings.ringInterface = "no-such-interface0"
        guard case let .failure(failure) = settings.resolveRingAddress() else { Issue.record("an unknown interface resolved"); return }
        #expect("\(failure)".contains("no-such-interface0") && "\(failure)".contains("lo"), "names the interfaces there are: \(failure)")
        settings.ringInterface = nil
        settings.host = "10.1.2.3"
        #expect(try settings.resolveRingAddress().get().address == "10.1.2.3")
        #expect(settings.problems().contains { $0.contains("--host 10.1.2.3") && $0.contains("--insecure") })
        settings.insecure = true
        #expect(settings.problems().isEmpty)
        settings.ringInterface = "eth0"
        #expect(settings.problems().contains { $0.contains("not both") })
        #expect(settings.ringAddressProblem("10.1.2.3", how: "x") == nil, "--insecure allows plain text")
    }
}
