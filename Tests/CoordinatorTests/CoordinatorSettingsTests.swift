import Testing
@testable import Coordinator

@Suite struct CoordinatorSettingsTests {
    @Test func defaultsAreUsable() {
        #expect(CoordinatorSettings().problems().isEmpty)
    }

    @Test func eachBadSettingIsNamed() {
        var s = CoordinatorSettings()
        s.workers = 0
        #expect(s.problems().contains { $0.contains("--workers") })
        s = CoordinatorSettings(); s.config = "huge"
        #expect(s.problems().contains { $0.contains("--config") && $0.contains("huge") })
        s = CoordinatorSettings(); s.workers = 4; s.globalBatch = 3
        #expect(s.problems().contains { $0.contains("--global-batch") })
        s = CoordinatorSettings(); s.epochs = 2
        #expect(s.problems().contains { $0.contains("not both") })
        s = CoordinatorSettings(); s.checkpointEvery = -1
        #expect(s.problems().contains { $0.contains("--checkpoint-every") })
        s = CoordinatorSettings(); s.checkpointEvery = 5
        #expect(s.problems().isEmpty, "periodic checkpoints are supported")
        s = CoordinatorSettings(); s.keep = 0
        #expect(s.problems().contains { $0.contains("--keep") })
        s = CoordinatorSettings(); s.listen = "localhost:5555"
        #expect(s.problems().contains { $0.contains("--listen") })
    }
}
