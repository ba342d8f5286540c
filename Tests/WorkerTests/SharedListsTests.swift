import Coordinator
import Model
import Testing
import Wire
import Worker

/// The coordinator never links the model, so it names configurations, optimizers and schedules
/// in lists of its own; these tests hold those lists to what the workers' model code accepts.
@Suite struct SharedListsTests {
    @Test func theCoordinatorsConfigurationsAreTheModelsOwn() {
        #expect(CoordinatorSettings.configNames == ModelConfig.all.map(\.name))
        for name in CoordinatorSettings.configNames { #expect(ModelConfig.named(name)?.name == name) }
    }

    @Test func everyOptimizerTheCoordinatorAcceptsIsOneTheModelHasAndBack() {
        #expect(TrainingRecipe.optimizers == Set(OptimizerKind.allCases.map(\.rawValue)))
        for optimizer in TrainingRecipe.optimizers {
            var settings = CoordinatorSettings()
            settings.optimizer = optimizer
            #expect(!settings.problems().contains { $0.contains("--optimizer") }, "\(optimizer)")
            let recipe = TrainingRecipe(settings: settings, totalSteps: 10)
            #expect(recipe.optimizerSettings.kind.rawValue == optimizer, "the worker trains with \(optimizer)")
        }
    }

    @Test func everyScheduleTheCoordinatorAcceptsGivesTheWorkerADistinctDecay() {
        var decays: [LearningRateSchedule.Decay] = []
        for schedule in TrainingRecipe.schedules.sorted() {
            var settings = CoordinatorSettings()
            settings.schedule = schedule
            #expect(!settings.problems().contains { $0.contains("--schedule") }, "\(schedule)")
            decays.append(TrainingRecipe(settings: settings, totalSteps: 10).optimizerSettings.schedule.decay)
        }
        #expect(Set(decays.map { "\($0)" }).count == TrainingRecipe.schedules.count, "\(decays)")
    }
}
