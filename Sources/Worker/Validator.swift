import Dataset
import Foundation
import Images
import Model
import Wire

/// Evaluates one rank's part of the held-out set (`ValidationPlan`): its blocks, each in one
/// forward pass of the model in evaluation mode, with the transform, forward and image measures of
/// `scvae reconstruct` (resize and centre crop; PSNR and SSIM on [0, 1]). Rank 0 also draws the
/// reconstruction grid of the set's first images.
final class Validator {
    let plan: ValidationPlan
    let data: TrainingData
    private let model: SCVAEModel
    private let transform: ImageTransform
    private let decoder = ImageDecoder()
    /// Tests only: a pause before each block (`WorkerSettings.validationPauseSeconds`).
    var pauseBeforeBlock: Double = 0

    /// Why the validation set cannot be used; says what to pass.
    enum Failure: Error, CustomStringConvertible {
        case cannotOpen(String)
        case otherSet(root: String, found: String, expected: String)
        case tooSmall(root: String, count: Int, needed: Int)

        var description: String {
            switch self {
            case let .cannotOpen(reason): "validation data: \(reason)"
            case let .otherSet(root, found, expected):
                "validation data \(root) has fingerprint \(found.prefix(16)), the coordinator's has \(expected.prefix(16)): give this worker --val-data with the coordinator's validation set"
            case let .tooSmall(root, count, needed):
                "validation data \(root) has \(count) images, the run validates on \(needed)"
            }
        }
    }

    /// Opens the plan's set: `overridePath` (this worker's --val-data), else the plan's path,
    /// else the built-in held-out set; it must be the coordinator's (same fingerprint).
    static func open(plan: ValidationPlan, config: ModelConfig, overridePath: String?, cacheDirectory: String?) throws(Failure) -> Validator {
        let data: TrainingData
        do {
            data = try DatasetLocation.resolveValidation(dataPath: overridePath ?? plan.dataPath, cacheDirectory: cacheDirectory)
        } catch {
            throw .cannotOpen("\(error)")
        }
        guard data.fingerprint == plan.fingerprint else {
            throw .otherSet(root: data.root, found: data.fingerprint, expected: plan.fingerprint)
        }
        guard data.count >= plan.images else { throw .tooSmall(root: data.root, count: data.count, needed: plan.images) }
        return Validator(plan: plan, data: data, config: config)
    }

    init(plan: ValidationPlan, data: TrainingData, config: ModelConfig) {
        self.plan = plan
        self.data = data
        model = SCVAEModel(config: config, maxBatch: plan.blockSize)
        transform = ImageTransform(size: config.imageSize, mode: .evaluation)
    }

    var config: ModelConfig { model.config }

    /// This rank's report of the validation after `step`, or nil when `interrupted` said so
    /// between blocks (the generation ended: the next one validates again).
    func evaluate(parameters: [Float], step: Int, rank: Int, worldSize: Int, interrupted: () -> Bool) -> ValidationReport? {
        let started = ContinuousClock.now
        var usage = [UInt64](repeating: 0, count: model.config.atoms)
        var blocks: [ValidationBlock] = []
        for block in plan.blocks(rank: rank, worldSize: worldSize) {
            if interrupted() { return nil }
            if pauseBeforeBlock > 0 { Thread.sleep(forTimeInterval: pauseBeforeBlock) }
            blocks.append(evaluate(block: block, parameters: parameters, usage: &usage))
        }
        var grid: [UInt8] = []
        if rank == 0 && plan.gridImages > 0 {
            if interrupted() { return nil }
            grid = gridPNG(parameters: parameters)
        }
        return ValidationReport(rank: UInt32(rank), step: UInt64(step), blocks: blocks, atomUsage: usage, gridPNG: grid,
                                seconds: (ContinuousClock.now - started).inSeconds)
    }

    /// Images `range` of the set that decode, as model inputs; the others are counted.
    private func load(_ range: Range<Int>) -> (inputs: [Float], count: Int, skipped: Int) {
        var inputs: [Float] = []
        var count = 0
        for index in range {
            do {
                let image = try decoder.decode(try data.readBytes(of: index), file: data.name(of: index),
                                               shorterSideAtLeast: transform.size)
                inputs += transform.apply(image, seed: 0, epoch: 0, sampleIndex: 0)
                count += 1
            } catch {
                continue
            }
        }
        return (inputs, count, range.count - count)
    }

    private func evaluate(block: Int, parameters: [Float], usage: inout [UInt64]) -> ValidationBlock {
        let (inputs, count, skipped) = load(plan.images(ofBlock: block))
        guard count > 0 else {
            return ValidationBlock(index: UInt32(block), images: 0, skipped: UInt32(skipped), loss: 0, recon: 0, latent: 0,
                                   psnr: 0, ssim: 0, zeroCodes: 0, codes: 0)
        }
        let (outputs, terms) = Reconstruction.forward(model, parameters: parameters, inputs: inputs, batch: count)
        model.countActiveAtoms(batch: count, into: &usage)
        let size = transform.size, floats = transform.outputCount
        var psnr = 0.0, ssim = 0.0
        for i in 0..<count {
            let range = (i * floats)..<((i + 1) * floats)
            let original = Reconstruction.unitRange(Array(inputs[range])), rebuilt = Reconstruction.unitRange(Array(outputs[range]))
            psnr += ImageQuality.psnr(original, rebuilt)
            ssim += ImageQuality.ssim(original, rebuilt, channels: 3, height: size, width: size)
        }
        return ValidationBlock(index: UInt32(block), images: UInt32(count), skipped: UInt32(skipped), loss: terms.total,
                               recon: terms.recon, latent: terms.latent, psnr: psnr, ssim: ssim,
                               zeroCodes: UInt64(terms.zeroCodes), codes: UInt64(terms.codeCount))
    }

    /// The grid of the set's first `gridImages` images that decode, as a PNG (empty if none does).
    private func gridPNG(parameters: [Float]) -> [UInt8] {
        let wanted = min(plan.gridImages, data.count)
        var originals: [Float] = [], rebuilt: [Float] = []
        var total = 0
        var next = 0
        while next < wanted {
            let range = next..<min(next + plan.blockSize, wanted)
            next = range.upperBound
            let (inputs, count, _) = load(range)
            guard count > 0 else { continue }
            originals += inputs
            rebuilt += Reconstruction.forward(model, parameters: parameters, inputs: inputs, batch: count).0
            total += count
        }
        guard total > 0 else { return [] }
        let (image, _) = Reconstruction.grid(originals: originals, reconstructions: rebuilt, count: total, size: transform.size)
        return (try? encodePNG(image)) ?? []
    }
}
