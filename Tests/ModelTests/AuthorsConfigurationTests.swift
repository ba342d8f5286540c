import Foundation
import Testing
@testable import Model

/// The authors' stage-1 configurations and every other one have the reference model's tensor
/// names, shapes and totals (Tests/Fixtures/layouts/NAME.json, written by
/// `scvae_reference.py layouts`).
@Suite struct AuthorsConfigurationTests {
    static let layouts = FixtureFiles.folder("layouts")

    @Test(arguments: ModelConfig.all)
    func layoutMatchesTheReferenceModel(config: ModelConfig) throws {
        let url = Self.layouts.appendingPathComponent("\(config.name).json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let rows = try #require(json["tensors"] as? [[Any]])
        var reference: [String: [Int]] = [:]
        for row in rows {
            let name = try #require(row.first as? String)
            reference[name] = try #require(row.last as? [Int])
        }
        let layout = ParameterLayout(config: config)
        let ours = Dictionary(uniqueKeysWithValues: layout.entries.map { ($0.name, $0.shape) })
        let missing = reference.keys.filter { ours[$0] == nil }.sorted()
        let extra = ours.keys.filter { reference[$0] == nil }.sorted()
        let misshaped = ours.keys.filter { reference[$0] != nil && reference[$0] != ours[$0] }.sorted()
        #expect(missing.isEmpty, "\(config.name): the reference has tensors we lack: \(missing.prefix(5))")
        #expect(extra.isEmpty, "\(config.name): we have tensors the reference lacks: \(extra.prefix(5))")
        #expect(misshaped.isEmpty, "\(config.name): shapes differ for \(misshaped.prefix(5))")
        #expect(layout.totalCount == json["total"] as? Int, "\(config.name): \(layout.totalCount) parameters vs \(String(describing: json["total"]))")
    }

    @Test func everyLayoutFileIsAConfiguration() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.layouts.path).filter { $0.hasSuffix(".json") }
        #expect(Set(files) == Set(ModelConfig.all.map { "\($0.name).json" }))
    }

    @Test func theAuthorsFilesHyperparameters() throws {
        // The values of the authors' configuration files (docs/model.md, "The authors' stage-1 configurations").
        let expected: [(String, [Int], Int, Int)] = [
            ("im256-scvae1x1", [1, 1, 1, 2, 2, 2, 4, 4, 4], 16, 1), ("im256-scvae4x4", [1, 1, 1, 2, 2, 4, 4], 16, 4),
            ("im256-scvae16x16", [1, 1, 2, 2, 4], 16, 16), ("im256-scvae32x32", [1, 2, 2, 4], 16, 32),
            ("ffhq256-scvae1x1", [1, 1, 1, 2, 2, 2, 4, 4, 4], 30, 1), ("ffhq256-scvae4x4", [1, 1, 1, 2, 2, 4, 4], 16, 4),
            ("ffhq256-scvae16x16", [1, 1, 2, 2, 4], 30, 16), ("ffhq256-scvae32x32", [1, 2, 2, 4], 16, 32),
        ]
        for (name, chMult, iterations, latent) in expected {
            let config = try #require(ModelConfig.named(name))
            #expect(config.chMult == chMult && config.istaIterations == iterations && config.latentSize == latent, "\(name)")
            #expect(config.imageSize == 256 && config.ch == 128 && config.resBlocks == 2 && config.attnResolutions == [16])
            #expect(config.latentChannels == 256 && config.atoms == 512 && config.dctAtomsPerAxis == 23)
            #expect(config.beta == 1 && config.latentWeight == 1 && config.maxGroups == 32)
        }
        // The paper's two configurations are two of the authors' under other names.
        #expect(ParameterLayout(config: .imagenetF16) == ParameterLayout(config: .im256SCVAE16x16))
        #expect(ParameterLayout(config: .imagenetF8) == ParameterLayout(config: .im256SCVAE32x32))
        #expect(ModelConfig.im256SCVAE1x1.attentionLevels == [4] && ModelConfig.im256SCVAE4x4.attentionLevels == [4])
        #expect(ModelConfig.im256SCVAE16x16.attentionLevels == [4] && ModelConfig.im256SCVAE32x32.attentionLevels == [])
    }
}
