#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Single-head self-attention over positions: out = x + proj_out(softmax(q k^T / sqrt(C)) v).
///
/// Legend: B = batch, P = H*W positions, C = channels. x, hn, q, k, v, mixed, out [B, P, C];
/// attention weights A [B, P, P] with row i = softmax over keys j of q_i . k_j / sqrt(C).
/// q, k, v, proj_out are 1x1 convolutions, i.e. GEMMs on the NHWC rows. Per image:
/// S = q k^T (P x P), A = softmax_rows(S / sqrt(C)), mixed = A v.
final class AttnBlock: ChainLayer {
    let positions: Int
    let channels: Int
    private let norm: GroupNormLayer
    private let query: ConvLayer
    private let key: ConvLayer
    private let value: ConvLayer
    private let projection: ConvLayer
    private let weights: FloatStorage
    private let mixed: FloatStorage
    private let output: FloatStorage
    private let workspace: Workspace

    init(_ prefix: String, layout: ParameterLayout, config: ModelConfig, height: Int, width: Int,
         channels: Int, maxBatch: Int, workspace: Workspace) {
        positions = height * width
        self.channels = channels
        self.workspace = workspace
        norm = GroupNormLayer("\(prefix).norm", layout: layout, config: config, positions: positions,
                              channels: channels, swish: false, maxBatch: maxBatch, workspace: workspace)
        let pointwise = Conv2dGeometry.pointwise(batch: 1, height: height, width: width, inChannels: channels, outChannels: channels)
        query = ConvLayer("\(prefix).q", layout: layout, geometry: pointwise, maxBatch: maxBatch, workspace: workspace)
        key = ConvLayer("\(prefix).k", layout: layout, geometry: pointwise, maxBatch: maxBatch, workspace: workspace)
        value = ConvLayer("\(prefix).v", layout: layout, geometry: pointwise, maxBatch: maxBatch, workspace: workspace)
        projection = ConvLayer("\(prefix).proj_out", layout: layout, geometry: pointwise, maxBatch: nil, workspace: workspace)
        weights = FloatStorage(count: maxBatch * positions * positions)
        mixed = FloatStorage(count: maxBatch * positions * channels)
        output = FloatStorage(count: maxBatch * positions * channels)
    }

    /// Four 1x1 convolutions plus q k^T and A v (2 P^2 C multiply-adds).
    var forwardFlopsPerImage: Double {
        4 * query.forwardFlopsPerImage + 4 * Double(positions * positions * channels)
    }
    var inputSize: Int { positions * channels }
    var outputSize: Int { positions * channels }
    private var scale: Float { 1 / Float(channels).squareRoot() }

    func forward(_ input: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) -> UnsafePointer<Float> {
        precondition(batch * outputSize <= output.count)
        let (p, c) = (positions, channels)
        let hn = norm.forward(input, batch: batch, parameters: parameters)
        let q = query.forward(hn, batch: batch, parameters: parameters)
        let k = key.forward(hn, batch: batch, parameters: parameters)
        let v = value.forward(hn, batch: batch, parameters: parameters)
        for b in 0..<batch {
            let a = weights.pointer + b * p * p
            BLAS.sgemm(transB: true, m: p, n: p, k: c, alpha: scale, a: q + b * p * c, lda: c,
                       b: k + b * p * c, ldb: c, c: a, ldc: p)
            eachRowBlock { rows in
                for i in rows { Self.softmaxInPlace(a + i * p, count: p) }
            }
            BLAS.sgemm(m: p, n: c, k: p, a: a, lda: p, b: v + b * p * c, ldb: c, c: mixed.pointer + b * p * c, ldc: c)
        }
        workspace.pool.copy(input, to: output.pointer, count: batch * outputSize)
        projection.run(into: output.pointer, mixed.pointer, batch: batch, parameters: parameters, accumulate: true)
        return UnsafePointer(output.pointer)
    }

    func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        guard let dInput else { preconditionFailure("AttnBlock always has an input gradient") }
        let (p, c) = (positions, channels)
        let n = batch * p * c
        // The residual's gradient comes first, written or added as asked; the norm's then adds.
        if accumulateInput {
            workspace.pool.add(dOutput, to: dInput, count: n)
        } else {
            workspace.pool.copy(dOutput, to: dInput, count: n)
        }
        let dMixed = workspace.floats(.attentionMixed, n)
        projection.backward(dOutput: dOutput, dInput: dMixed, batch: batch, parameters: parameters, gradients: gradients,
                            accumulateInput: false)
        let dQ = workspace.floats(.attentionQuery, n)
        let dK = workspace.floats(.attentionKey, n)
        let dV = workspace.floats(.attentionValue, n)
        let dS = workspace.floats(.attentionScores, p * p)
        let (q, k, v) = (query.outputPointer, key.outputPointer, value.outputPointer)
        for b in 0..<batch {
            let a = weights.pointer + b * p * p
            let off = b * p * c
            // dA = dMixed v^T; dv = A^T dMixed.
            BLAS.sgemm(transB: true, m: p, n: p, k: c, a: dMixed + off, lda: c, b: v + off, ldb: c, c: dS, ldc: p)
            BLAS.sgemm(transA: true, m: p, n: c, k: p, a: a, lda: p, b: dMixed + off, ldb: c, c: dV + off, ldc: c)
            // Softmax backward per row: dS = A * (dA - sum_j A dA).
            eachRowBlock { rows in
                for i in rows {
                    let ai = a + i * p, di = dS + i * p
                    var dot: Float = 0
                    for j in 0..<p { dot += ai[j] * di[j] }
                    for j in 0..<p { di[j] = ai[j] * (di[j] - dot) }
                }
            }
            // S = scale q k^T: dq = scale dS k, dk = scale dS^T q.
            BLAS.sgemm(m: p, n: c, k: p, alpha: scale, a: dS, lda: p, b: k + off, ldb: c, c: dQ + off, ldc: c)
            BLAS.sgemm(transA: true, m: p, n: c, k: p, alpha: scale, a: dS, lda: p, b: q + off, ldb: c, c: dK + off, ldc: c)
        }
        let dHn = workspace.floats(.attentionNorm, n)
        query.backward(dOutput: dQ, dInput: dHn, batch: batch, parameters: parameters, gradients: gradients,
                       accumulateInput: false)
        key.backward(dOutput: dK, dInput: dHn, batch: batch, parameters: parameters, gradients: gradients)
        value.backward(dOutput: dV, dInput: dHn, batch: batch, parameters: parameters, gradients: gradients)
        norm.backward(dOutput: dHn, dInput: dInput, batch: batch, parameters: parameters, gradients: gradients)
    }

    /// Rows of the attention matrix per chunk on the workspace's threads (each row is its own).
    static let rowsPerChunk = 16

    /// Runs `body` over the P rows of one image's attention matrix in blocks, as pool chunks.
    private func eachRowBlock(_ body: (Range<Int>) -> Void) {
        let p = positions
        workspace.pool.run(chunks: Conv2dDirect.chunkCount(p, Self.rowsPerChunk)) { chunk, _ in
            body((chunk * Self.rowsPerChunk)..<min(p, (chunk + 1) * Self.rowsPerChunk))
        }
    }

    /// Numerically stable softmax of one row (subtract the max first).
    static func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, count: Int) {
        var largest = -Float.infinity
        for j in 0..<count { largest = max(largest, row[j]) }
        var sum: Float = 0
        for j in 0..<count {
            row[j] = expf(row[j] - largest)
            sum += row[j]
        }
        let inverse = 1 / sum
        for j in 0..<count { row[j] *= inverse }
    }
}
