@testable import Coordinator
import Foundation
import Testing
import TensorFiles
import Wire

/// --beta and --latent-weight: checked, carried in the recipe (and so in every checkpoint's
/// state.json), compared when a run resumes, and written into the weights' metadata.
@Suite struct LossSettingsTests {
    @Test func badValuesAreRefusedNamingTheOption() {
        var settings = CoordinatorSettings()
        for beta in [0, -1, .infinity, .nan] {
            settings.beta = beta
            #expect(settings.problems().contains { $0.hasPrefix("--beta must be a positive number") }, "\(beta)")
        }
        settings.beta = 0.25
        settings.latentWeight = .value(-0.5)
        #expect(settings.problems().contains { $0.hasPrefix("--latent-weight must be") })
        settings.latentWeight = .value(0)
        #expect(settings.problems().isEmpty, "a latent weight of 0 trains on reconstruction alone: \(settings.problems())")
        #expect(LatentWeight(text: "auto") == .auto && LatentWeight(text: "0.125") == .value(0.125) && LatentWeight(text: "half") == nil)
    }

    @Test func theRecipeCarriesThemAndLeavesOutTheDefaults() throws {
        var settings = CoordinatorSettings()
        let plain = TrainingRecipe(settings: settings, totalSteps: 10)
        #expect(!plain.json.contains("beta") && !plain.json.contains("latentWeight"), "\(plain.json)")
        settings.beta = 0.5
        settings.latentWeight = .auto
        let recipe = TrainingRecipe(settings: settings, totalSteps: 10)
        #expect(recipe.json.contains(#""beta":0.5"#) && recipe.json.contains(#""latentWeight":"auto""#), "\(recipe.json)")
        let decoded = try TrainingRecipe.decode(recipe.json)
        #expect(decoded.beta == 0.5 && decoded.latentWeight == .auto)
        settings.latentWeight = .value(0.25)
        #expect(try TrainingRecipe.decode(TrainingRecipe(settings: settings, totalSteps: 10).json).latentWeight == .value(0.25))
    }

    @Test func aWorkerRefusesUnusableValues() {
        var recipe = TrainingRecipe(settings: CoordinatorSettings(), totalSteps: 10)
        recipe.beta = -1
        #expect(throws: TrainingRecipe.Problem.invalid(field: "beta", value: "-1.0")) { try TrainingRecipe.decode(recipe.json) }
        recipe.beta = nil
        recipe.latentWeight = .value(-2)
        #expect(throws: TrainingRecipe.Problem.invalid(field: "latentWeight", value: "-2.0")) { try TrainingRecipe.decode(recipe.json) }
        let other = recipe.json.replacingOccurrences(of: "-2", with: #""sum""#)
        #expect(throws: (any Error).self) { try TrainingRecipe.decode(other) }
    }

    @Test func resumingWithOtherLossSettingsIsAConflict() {
        var settings = CoordinatorSettings()
        let defaults = TrainingRecipe(settings: settings, totalSteps: 5).json
        #expect(recipeConflicts(checkpointRecipe: defaults, settings: settings).isEmpty)
        settings.beta = 0.5
        #expect(recipeConflicts(checkpointRecipe: defaults, settings: settings) == ["beta 1.0 (this run: 0.5)"])
        let half = TrainingRecipe(settings: settings, totalSteps: 5).json
        settings.latentWeight = .auto
        #expect(recipeConflicts(checkpointRecipe: half, settings: settings) == ["latent weight 1.0 (this run: auto)"])
        settings.beta = 1
        #expect(recipeConflicts(checkpointRecipe: half, settings: settings).count == 2)
        // The shard window decides the order of the samples: a resume keeps it.
        settings = CoordinatorSettings()
        settings.shardWindow = 4
        #expect(recipeConflicts(checkpointRecipe: defaults, settings: settings) == ["shard window 0 (this run: 4)"])
        #expect(recipeConflicts(checkpointRecipe: TrainingRecipe(settings: settings, totalSteps: 5).json, settings: settings).isEmpty)
    }

    @Test func theWeightsFileNamesTheLossSettings() throws {
        let directory = NSTemporaryDirectory() + "scvae-final-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tensor = NamedTensor(name: "encoder.conv_in.bias", shape: [2], floats: [1, 2])
        let file = try FinalWeights.write([tensor], step: 3, epoch: 0,
                                          model: FinalWeights.Model(config: "small", beta: 0.5, latentWeight: .auto), into: directory)
        let metadata = try SafeTensors.read(file).metadata
        #expect(metadata["config"] == "small" && metadata["beta"] == "0.5" && metadata["latent_weight"] == "auto" && metadata["step"] == "3")
    }
}
