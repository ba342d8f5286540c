import Foundation
import Testing
@testable import Model

/// Compares forwardBackward with the PyTorch reference on its fixtures (weights, input and
/// gradients written by scripts/reference/scvae_reference.py).
///
/// A fixture directory is `Tests/Fixtures/NAME` of this package, or `$SCVAE_<NAME>_FIXTURE`.
@Suite struct ReferenceFixtureTests {
    @Test func tinyGradientsMatchPyTorch() throws {
        let fixture = try GradientFixture(folder: "tiny", config: .tiny)
        let failures = fixture.mismatches(config: .tiny)
        #expect(failures.isEmpty, "\(failures.count) differences:\n\(failures.joined(separator: "\n"))")
    }

    /// tiny with beta 0.5 and latent weight 0.25 (the tiny fixture's weights with another c, so that
    /// the soft-threshold margin holds for the new theta).
    @Test func tinyWithBetaAndLatentWeightMatchesPyTorch() throws {
        let config = try ModelConfig.tiny.applying(beta: 0.5, latentWeight: .value(0.25))
        let fixture = try GradientFixture(folder: "tiny_weighted", config: config)
        #expect(fixture.model?.beta == 0.5 && fixture.model?.latentWeight == 0.25,
                "the fixture was made with beta \(String(describing: fixture.model?.beta)), latent weight \(String(describing: fixture.model?.latentWeight))")
        let failures = fixture.mismatches(config: config)
        #expect(failures.isEmpty, "\(failures.count) differences:\n\(failures.joined(separator: "\n"))")
        // Each setting changes the maths: dropping either one misses the fixture.
        for (label, other) in [("beta 1", try config.applying(beta: 1)),
                               ("latent weight 1", try config.applying(latentWeight: .value(1)))] {
            #expect(!fixture.mismatches(config: other).isEmpty, "with \(label) the fixture still matches")
        }
    }

    /// One fixture per block structure of the authors' configurations (levels, ch_mult, ResNet
    /// blocks, attention levels), each at a reduced width, image size and latent size.
    @Test(arguments: ["scvae1x1", "scvae4x4", "scvae16x16", "scvae32x32"])
    func authorsBlockStructuresMatchPyTorch(folder: String) throws {
        let fixture = try GradientFixture(folder: folder, config: nil)
        let config = try #require(fixture.model, "\(folder)/fixture.json has no model")
        let fullName = try #require(fixture.info["structure_of"] as? String)
        let full = try #require(ModelConfig.named(fullName), "no configuration named \(fullName)")
        #expect(config.chMult == full.chMult && config.resBlocks == full.resBlocks)
        #expect(config.attentionLevels == full.attentionLevels,
                "attention at levels \(config.attentionLevels), \(full.name) has \(full.attentionLevels)")
        #expect(config.istaIterations == full.istaIterations)
        let failures = fixture.mismatches(config: config)
        #expect(failures.isEmpty, "\(folder): \(failures.count) differences:\n\(failures.joined(separator: "\n"))")
    }
}

/// A gradient fixture: the reference's weights, input, gradients and loss terms of one step.
struct GradientFixture {
    let name: String
    let weights: [String: TensorValues]
    let images: [Float]
    let gradients: [String: TensorValues]
    let metadata: [String: String]
    /// fixture.json.
    let info: [String: Any]
    /// The configuration in fixture.json's `model`, when it has one.
    let model: ModelConfig?

    /// Reads Tests/Fixtures/FOLDER. A fixture with `weights_base` overlays its weights on that
    /// fixture's, and `input_base` takes the input from there.
    init(folder: String, config: ModelConfig?) throws {
        let directory = FixtureFiles.folder(folder)
        name = folder
        info = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("fixture.json"))) as? [String: Any] ?? [:]
        var weights: [String: TensorValues] = [:]
        if let base = info["weights_base"] as? String {
            weights = try FixtureFiles.tensors(FixtureFiles.folder(base).appendingPathComponent("weights.safetensors")).tensors
        }
        for (key, value) in try FixtureFiles.tensors(directory.appendingPathComponent("weights.safetensors")).tensors {
            weights[key] = value
        }
        self.weights = weights
        let inputFolder = (info["input_base"] as? String).map(FixtureFiles.folder) ?? directory
        images = try FixtureFiles.array(inputFolder.appendingPathComponent("input.npy")).values
        (gradients, metadata) = try FixtureFiles.tensors(directory.appendingPathComponent("grads.safetensors"))
        model = (info["model"] as? [String: Any]).flatMap(Self.config)
    }

    /// The reference's Config fields as a ModelConfig.
    static func config(_ fields: [String: Any]) -> ModelConfig? {
        guard let name = fields["name"] as? String, let imageSize = fields["image_size"] as? Int,
              let ch = fields["ch"] as? Int, let chMult = fields["ch_mult"] as? [Int],
              let resBlocks = fields["res_blocks"] as? Int, let attn = fields["attn_resolutions"] as? [Int],
              let latentChannels = fields["latent_channels"] as? Int, let atoms = fields["atoms"] as? Int,
              let iterations = fields["ista_iterations"] as? Int, let m = fields["dct_atoms_per_axis"] as? Int,
              let beta = fields["beta"] as? Double, let latentWeight = fields["latent_weight"] as? Double,
              let maxGroups = fields["max_groups"] as? Int, let epsilon = fields["gn_eps"] as? Double
        else { return nil }
        var config = ModelConfig(name: name, imageSize: imageSize, ch: ch, chMult: chMult, resBlocks: resBlocks,
                                 attnResolutions: attn, latentChannels: latentChannels, atoms: atoms,
                                 istaIterations: iterations, dctAtomsPerAxis: m)
        config.beta = Float(beta)
        config.latentWeight = Float(latentWeight)
        config.maxGroups = maxGroups
        config.groupNormEpsilon = Float(epsilon)
        return config
    }

    /// Runs one forward and backward of `config` and lists every disagreement with the fixture:
    /// loss and recon within 1e-5 relative, sparsity within 1e-6, each gradient within
    /// 1e-4 * max|g of the tensor| + 1e-6 * max|g over all tensors| (an absolute floor for
    /// gradients that are zero by construction). Empty when everything matches.
    func mismatches(config: ModelConfig) -> [String] {
        let batch = images.count / (3 * config.imageSize * config.imageSize)
        let model = SCVAEModel(config: config, maxBatch: batch)
        var failures: [String] = []
        var parameters = [Float](repeating: 0, count: model.layout.totalCount)
        for entry in model.layout.entries {
            guard let tensor = weights[entry.name], tensor.values.count == entry.count else {
                return ["\(name): weights lack \(entry.name) \(entry.shape) or have another shape"]
            }
            for i in 0..<entry.count { parameters[entry.offset + i] = tensor.values[i] }
        }
        var ours = [Float](repeating: 0, count: parameters.count)
        let terms = parameters.withUnsafeBufferPointer { p in
            ours.withUnsafeMutableBufferPointer { g in
                model.forwardBackward(parameters: p, images: images, batch: batch, gradients: g, gradientScale: 1 / Float(batch))
            }
        }
        let loss = terms.total / Double(batch), recon = terms.recon / Double(batch)
        if let expected = Double(metadata["loss"] ?? ""), abs(loss - expected) > 1e-5 * expected {
            failures.append("loss \(loss) vs \(expected)")
        }
        if let expected = Double(metadata["recon"] ?? ""), abs(recon - expected) > 1e-5 * expected {
            failures.append("recon \(recon) vs \(expected)")
        }
        if let expected = Double(metadata["sparsity"] ?? ""), abs(terms.sparsity - expected) > 1e-6 {
            failures.append("sparsity \(terms.sparsity) vs \(expected)")
        }
        if metadata["loss"] == nil || metadata["recon"] == nil || metadata["sparsity"] == nil {
            failures.append("\(name): grads.safetensors lacks loss, recon or sparsity metadata")
        }
        let globalScale = gradients.values.map { maxAbs($0.values) }.max() ?? 1
        var worst: (name: String, relative: Float) = ("", 0)
        for entry in model.layout.entries {
            guard let expected = gradients[entry.name]?.values, expected.count == entry.count else {
                failures.append("fixture lacks gradient \(entry.name)")
                continue
            }
            let mine = Array(ours[entry.range])
            let diff = maxAbsDifference(mine, expected)
            let scale = maxAbs(expected)
            let allowed = 1e-4 * scale + 1e-6 * globalScale
            if scale > 1e-3 * globalScale && diff / scale > worst.relative { worst = (entry.name, diff / scale) }
            if diff > allowed {
                failures.append("\(entry.name): max diff \(diff) (allowed \(allowed)); first \(Array(mine.prefix(3))) vs \(Array(expected.prefix(3)))")
            }
        }
        print("\(name) fixture as \(config.name) (beta \(config.beta), latent weight \(config.latentWeight)): loss \(loss) vs \(metadata["loss"] ?? "?"); worst relative gradient difference \(worst); \(failures.count) differences")
        return failures
    }
}
