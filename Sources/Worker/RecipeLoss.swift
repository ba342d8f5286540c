import Model
import Wire

extension ModelConfig {
    /// This configuration with the recipe's loss settings: beta (LISTA's threshold scale) and the
    /// latent term's weight, `auto` resolved for this configuration's latent grid by the model's
    /// own `applying(beta:latentWeight:)`. `TrainingRecipe.decode` has refused unusable values.
    func applying(_ recipe: TrainingRecipe) -> ModelConfig {
        let weight: LatentWeightSetting? = switch recipe.latentWeight {
        case .auto?: .auto
        case let .value(number)?: .value(Float(number))
        case nil: nil
        }
        return (try? applying(beta: recipe.beta.map { Float($0) }, latentWeight: weight)) ?? self
    }
}
