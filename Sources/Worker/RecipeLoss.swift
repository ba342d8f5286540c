import Model
import Wire

extension ModelConfig {
    /// This configuration with the recipe's loss settings: beta (LISTA's threshold scale) and the
    /// latent term's weight, `auto` resolved for this configuration's latent grid.
    func applying(_ recipe: TrainingRecipe) -> ModelConfig {
        var config = self
        if let beta = recipe.beta { config.beta = Float(beta) }
        if let weight = recipe.latentWeight {
            config.latentWeight = Float(weight.resolved(positions: latentSize * latentSize, channels: latentChannels))
        }
        return config
    }
}
