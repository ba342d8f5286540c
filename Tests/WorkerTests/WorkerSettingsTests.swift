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
}
