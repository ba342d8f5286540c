/// A named GroupNorm of the model (norm1, norm2, attention norm, norm_out), swish fused or not.
///
/// Legend: P = positions per image, C = channels, G = groups. Output [B, P, C]; mean, rstd
/// caches [B, G]; weight, bias [C] at `prefix.weight` / `prefix.bias` of the flat buffer.
final class GroupNormLayer: ChainLayer {
    let positions: Int
    let channels: Int
    let groups: Int
    let epsilon: Float
    let swish: Bool
    let weightOffset: Int
    let biasOffset: Int
    private let output: FloatStorage
    private let mean: FloatStorage
    private let rstd: FloatStorage
    private var input: UnsafePointer<Float>?
    private let workspace: Workspace

    init(_ prefix: String, layout: ParameterLayout, config: ModelConfig, positions: Int, channels: Int,
         swish: Bool, maxBatch: Int, workspace: Workspace) {
        let weight = layout.entry("\(prefix).weight"), bias = layout.entry("\(prefix).bias")
        precondition(weight.shape == [channels] && bias.shape == [channels], "\(prefix) is not a norm of \(channels) channels")
        self.positions = positions
        self.channels = channels
        groups = config.groups(for: channels)
        precondition(channels % groups == 0, "\(prefix): \(channels) channels do not split into \(groups) groups")
        epsilon = config.groupNormEpsilon
        self.swish = swish
        self.workspace = workspace
        weightOffset = weight.offset
        biasOffset = bias.offset
        output = FloatStorage(count: maxBatch * positions * channels)
        mean = FloatStorage(count: maxBatch * groups)
        rstd = FloatStorage(count: maxBatch * groups)
    }

    var forwardFlopsPerImage: Double { 0 }
    var inputSize: Int { positions * channels }
    var outputSize: Int { positions * channels }

    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float> {
        precondition(batch * outputSize <= output.count)
        self.input = input
        GroupNorm.forward(out: output.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: input,
                          weight: parameters + weightOffset, bias: parameters + biasOffset,
                          batch: batch, positions: positions, channels: channels, groups: groups,
                          epsilon: epsilon, swish: swish, kernels: workspace.kernels, pool: workspace.pool)
        return UnsafePointer(output.pointer)
    }

    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        guard let input else { preconditionFailure("GroupNormLayer.backward before forward") }
        guard let dInput else { preconditionFailure("GroupNormLayer always has an input gradient") }
        GroupNorm.backward(dInput: dInput, dWeight: gradients + weightOffset, dBias: gradients + biasOffset,
                           dOut: dOutput, inp: input, mean: mean.pointer, rstd: rstd.pointer,
                           weight: parameters + weightOffset, bias: parameters + biasOffset,
                           batch: batch, positions: positions, channels: channels, groups: groups, swish: swish,
                           accumulateInput: accumulateInput,
                           scratch: workspace.floats(.normGradient, swish ? batch * positions * channels : 1),
                           kernels: workspace.kernels, pool: workspace.pool)
    }
}
