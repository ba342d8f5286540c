import Model
import Testing
import Wire
@testable import Worker

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

    /// A worker trains the configuration with the recipe's beta and latent weight; `auto` is
    /// 1/(H*W*C) of the configuration's own latent grid.
    @Test func theRecipesLossSettingsApplyToTheConfiguration() throws {
        #expect(ModelConfig.tiny.applying(try TrainingRecipe.decode(Self.json)) == .tiny)
        let tuned = try TrainingRecipe.decode(Self.json.replacingOccurrences(of: "{", with: #"{"beta":0.5,"latentWeight":"auto","#))
        let tiny = ModelConfig.tiny.applying(tuned)
        #expect(tiny.beta == 0.5 && tiny.latentWeight == 1.0 / Float(8 * 8 * 64))
        let small = ModelConfig.small.applying(tuned)
        #expect(small.latentWeight == 1.0 / Float(16 * 16 * 64) && small.name == "small")
        let fixed = try TrainingRecipe.decode(Self.json.replacingOccurrences(of: "{", with: #"{"latentWeight":0.25,"#))
        #expect(ModelConfig.tiny.applying(fixed).latentWeight == 0.25 && ModelConfig.tiny.applying(fixed).beta == 1)
    }
}
