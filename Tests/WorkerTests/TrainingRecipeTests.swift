import Model
import Testing
import Wire
import Worker

@Suite struct TrainingRecipeTests {
    static let json = #"{"checksumEvery":10,"exactReduction":false,"learningRate":0.005,"microBatch":16,"optimizer":"sgd","schedule":"cosine","totalSteps":12,"warmupSteps":2}"#

    @Test func decodesTheCoordinatorsObject() throws {
        let recipe = try TrainingRecipe.decode(Self.json)
        #expect(recipe.totalSteps == 12 && recipe.microBatch == 16 && recipe.exactReduction == false)
        #expect(recipe.optimizerSettings.kind == .sgd)
        #expect(recipe.optimizerSettings.schedule == LearningRateSchedule(peak: 0.005, warmupSteps: 2, decay: .cosine(totalSteps: 12, finalRate: 0)))
        #expect(recipe.comparesChecksum(afterStep: 10) && recipe.comparesChecksum(afterStep: 12) && !recipe.comparesChecksum(afterStep: 11))
    }

    @Test func anOlderCoordinatorWithoutExactReductionStillDecodes() throws {
        let older = Self.json.replacingOccurrences(of: #""exactReduction":false,"#, with: "")
        #expect(try TrainingRecipe.decode(older).exactReduction == nil)
    }

    @Test func unusableSettingsNameTheField() {
        #expect(throws: TrainingRecipe.Problem.invalid(field: "optimizer", value: "lamb")) {
            try TrainingRecipe.decode(Self.json.replacingOccurrences(of: "\"sgd\"", with: "\"lamb\""))
        }
        #expect(throws: TrainingRecipe.Problem.invalid(field: "microBatch", value: "0")) {
            try TrainingRecipe.decode(Self.json.replacingOccurrences(of: "\"microBatch\":16", with: "\"microBatch\":0"))
        }
        #expect(throws: (any Error).self) { try TrainingRecipe.decode("[1, 2]") }
    }
}
