import Foundation
import Testing
@testable import Model

/// --latent-weight's parse type and ModelConfig.applying(beta:latentWeight:).
@Suite struct LatentWeightSettingTests {
    @Test func parsesAutoAndNumbers() throws {
        #expect(try LatentWeightSetting.parse("auto") == .auto)
        #expect(try LatentWeightSetting.parse("AUTO") == .auto)
        #expect(try LatentWeightSetting.parse("0.25") == .value(0.25))
        #expect(try LatentWeightSetting.parse("0") == .value(0))
        #expect(try LatentWeightSetting.parse("1e-3") == .value(0.001))
        #expect(LatentWeightSetting("0.5") == .value(0.5))
        #expect(LatentWeightSetting("-1") == nil)
    }

    @Test func rejectsNegativeNonFiniteAndText() {
        #expect(throws: LossSettingError.latentWeightOutOfRange(-0.5)) { try LatentWeightSetting.parse("-0.5") }
        #expect(throws: LossSettingError.latentWeightNotANumber("heavy")) { try LatentWeightSetting.parse("heavy") }
        #expect(throws: LossSettingError.latentWeightNotANumber("")) { try LatentWeightSetting.parse("") }
        for text in ["nan", "inf", "-inf", "1e40"] {
            #expect(throws: LossSettingError.self, "\(text)") { try LatentWeightSetting.parse(text) }
        }
    }

    @Test func textRoundTrips() throws {
        for setting: LatentWeightSetting in [.auto, .value(0.25), .value(1e-5), .value(0), .value(1.0 / 3)] {
            #expect(try LatentWeightSetting.parse(setting.description) == setting, "\(setting)")
        }
        #expect(LatentWeightSetting.auto.description == "auto")
        #expect(LatentWeightSetting.value(0.25).description == "0.25")
        let encoded = try JSONEncoder().encode([LatentWeightSetting.auto, .value(0.5)])
        #expect(String(decoding: encoded, as: UTF8.self) == #"["auto","0.5"]"#)
        #expect(try JSONDecoder().decode([LatentWeightSetting].self, from: encoded) == [.auto, .value(0.5)])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([LatentWeightSetting].self, from: Data(#"["-2"]"#.utf8)) }
    }

    @Test func autoIsOneOverTheLatentGridSize() {
        // The authors' "constant" weight 1 / (h * w * d).
        #expect(LatentWeightSetting.auto.resolved(for: .tiny) == 1 / Float(8 * 8 * 64))
        #expect(LatentWeightSetting.auto.resolved(for: .im256SCVAE16x16) == 1 / Float(16 * 16 * 256))
        #expect(LatentWeightSetting.auto.resolved(for: .ffhq256SCVAE1x1) == 1 / Float(256))
        #expect(LatentWeightSetting.value(0.25).resolved(for: .small) == 0.25)
    }

    @Test func applyingSetsAndValidates() throws {
        let config = try ModelConfig.tiny.applying(beta: 0.5, latentWeight: .auto)
        #expect(config.beta == 0.5 && config.latentWeight == 1 / 4096)
        #expect(try ModelConfig.tiny.applying() == .tiny)
        #expect(try ModelConfig.tiny.applying(latentWeight: .value(0)).latentWeight == 0)
        for beta: Float in [0, -1, .nan, .infinity] {
            #expect(throws: LossSettingError.self, "beta \(beta)") { try ModelConfig.tiny.applying(beta: beta) }
        }
        #expect(throws: LossSettingError.latentWeightOutOfRange(-1)) { try ModelConfig.tiny.applying(latentWeight: .value(-1)) }
        #expect(LossSettingError.betaOutOfRange(0).description == "beta must be a finite number greater than 0 (got 0.0).")
    }

    /// What scvae-coordinator writes into a weights file's metadata sets the tools' loss settings.
    @Test func aWeightsFilesMetadataCarriesItsLossSettings() {
        let trained = ModelConfig.tiny.applying(weightsMetadata: ["config": "tiny", "beta": "0.5", "latent_weight": "auto"])
        #expect(trained.beta == 0.5 && trained.latentWeight == 1 / 4096)
        #expect(ModelConfig.tiny.applying(weightsMetadata: ["beta": "1.0", "latent_weight": "0.25"]).latentWeight == 0.25)
        // Without the entries (the reference's files), or with unusable ones, nothing changes.
        #expect(ModelConfig.tiny.applying(weightsMetadata: ["format": "pt"]) == .tiny)
        #expect(ModelConfig.tiny.applying(weightsMetadata: ["beta": "-2"]) == .tiny)
        #expect(ModelConfig.tiny.applying(weightsMetadata: ["beta": "lots"]) == .tiny)
    }
}
