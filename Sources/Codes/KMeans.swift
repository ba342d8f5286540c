import Foundation
import Images
import Model

/// Points that k-means reads as chunks of dense rows, so that only a chunk is ever dense.
public protocol PointRows {
    var count: Int { get }
    var dimension: Int { get }
    /// Writes rows `range` ([range.count, dimension]) to `out`.
    func rows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>)
}

extension SparseCodes: PointRows {
    public var count: Int { rowCount }
    public var dimension: Int { atoms }
    public func rows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) { dense(rows: range, into: out) }
}

/// Points held densely, row after row.
public struct DenseRows: PointRows, Sendable {
    public var values: [Float]
    public var dimension: Int

    public init(values: [Float], dimension: Int) {
        precondition(dimension >= 1 && values.count % dimension == 0)
        self.values = values
        self.dimension = dimension
    }

    public var count: Int { values.count / dimension }
    public func rows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        values.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + range.lowerBound * dimension, count: range.count * dimension) }
    }
}

/// k-means (Lloyd's iterations from greedy k-means++ seeds, best of several seeded starts).
///
/// Points are read `chunkRows` at a time; the squared distances of a chunk to all centres are one
/// GEMM, |x|² - 2 x·c + |c|², so memory is the points' own storage plus a chunk of rows, a chunk
/// of distances, the centres, and one label and one distance per point, however many points.
public struct KMeans: Sendable {
    public var clusters: Int
    public var seed: UInt64
    /// Independent starts; the one with the lowest inertia wins.
    public var initializations: Int
    public var maxIterations: Int
    /// Stop when the centres move less than this (sum of squared shifts) relative to the mean
    /// variance of the coordinates, as scikit-learn does.
    public var tolerance: Double
    public var chunkRows: Int

    public init(clusters: Int, seed: UInt64 = 0, initializations: Int = 3, maxIterations: Int = 300,
                tolerance: Double = 1e-4, chunkRows: Int = 4096) {
        precondition(clusters >= 1 && initializations >= 1 && maxIterations >= 1 && chunkRows >= 1)
        self.clusters = clusters
        self.seed = seed
        self.initializations = initializations
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.chunkRows = chunkRows
    }

    public struct Result: Sendable {
        /// [clusters, dimension]
        public var centers: [Float]
        /// The nearest centre of each point.
        public var labels: [Int32]
        /// Sum of squared distances of the points to their centres.
        public var inertia: Double
        public var iterations: Int
    }

    public func fit(_ points: some PointRows) -> Result {
        precondition(points.count >= clusters, "k-means: \(points.count) points for \(clusters) clusters")
        let threshold = tolerance * meanVariance(points)
        var best: Result?
        for start in 0..<initializations {
            var random = KeyedRandom(key: KeyedRandom.key([seed, UInt64(start), 0x6B6D_6561_6E73]))
            let result = lloyd(points, centers: seeds(points, random: &random), threshold: threshold)
            if best == nil || result.inertia < best!.inertia { best = result }
        }
        return best!
    }

    /// The nearest of `centers` ([clusters, dimension], as `fit` returns them) for each point.
    public func nearest(_ points: some PointRows, centers: [Float]) -> [Int32] {
        precondition(centers.count == clusters * points.dimension)
        var labels = [Int32](repeating: -1, count: points.count), distances = [Float](repeating: 0, count: points.count)
        _ = assign(points, centers: centers, labels: &labels, distances: &distances) { _, _ in }
        return labels
    }

    /// Lloyd's iterations until no label changes or the centres settle, then a last assignment.
    func lloyd(_ points: some PointRows, centers start: [Float], threshold: Double) -> Result {
        let d = points.dimension
        var centers = start
        var labels = [Int32](repeating: -1, count: points.count)
        var distances = [Float](repeating: 0, count: points.count)
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            var sums = [Double](repeating: 0, count: clusters * d)
            var sizes = [Int](repeating: 0, count: clusters)
            let pass = assign(points, centers: centers, labels: &labels, distances: &distances) { label, row in
                sizes[label] += 1
                for j in 0..<d { sums[label * d + j] += Double(row[j]) }
            }
            var next = centers
            var farthest = (sizes.contains(0) ? (0..<points.count).sorted { distances[$0] > distances[$1] } : []).makeIterator()
            for k in 0..<clusters {
                if sizes[k] > 0 {
                    for j in 0..<d { next[k * d + j] = Float(sums[k * d + j] / Double(sizes[k])) }
                } else if let far = farthest.next() {
                    // An empty cluster restarts at the point farthest from its centre.
                    next.withUnsafeMutableBufferPointer { points.rows(far..<(far + 1), into: $0.baseAddress! + k * d) }
                }
            }
            var shift = 0.0
            for i in 0..<next.count { shift += Double(next[i] - centers[i]) * Double(next[i] - centers[i]) }
            centers = next
            if pass.changed == 0 || shift <= threshold { break }
        }
        let final = assign(points, centers: centers, labels: &labels, distances: &distances) { _, _ in }
        return Result(centers: centers, labels: labels, inertia: final.inertia, iterations: iterations)
    }

    /// Greedy k-means++: each new centre is the best (lowest potential) of 2 + ln(K) candidates
    /// drawn with probability proportional to the squared distance to the centres so far.
    func seeds(_ points: some PointRows, random: inout KeyedRandom) -> [Float] {
        let d = points.dimension, n = points.count
        var centers = [Float](repeating: 0, count: clusters * d)
        let first = random.below(n)
        centers.withUnsafeMutableBufferPointer { points.rows(first..<(first + 1), into: $0.baseAddress!) }
        var closest = distancesTo(points, Array(centers[0..<d]))[0]
        let trials = 2 + Int(Foundation.log(Double(clusters)))
        for k in 1..<max(1, clusters) {
            let potential = closest.reduce(0.0) { $0 + Double($1) }
            var candidates: [Int] = []
            for _ in 0..<trials {
                var target = Double(random.next() >> 11) * 0x1p-53 * potential
                var chosen = n - 1
                for i in 0..<n {
                    target -= Double(closest[i])
                    if target < 0 { chosen = i; break }
                }
                candidates.append(chosen)
            }
            var rows = [Float](repeating: 0, count: trials * d)
            rows.withUnsafeMutableBufferPointer { buffer in
                for (t, i) in candidates.enumerated() { points.rows(i..<(i + 1), into: buffer.baseAddress! + t * d) }
            }
            let candidateDistances = distancesTo(points, rows)
            var bestTrial = 0, bestPotential = Double.infinity
            for t in 0..<trials {
                var sum = 0.0
                for i in 0..<n { sum += Double(min(closest[i], candidateDistances[t][i])) }
                if sum < bestPotential { (bestTrial, bestPotential) = (t, sum) }
            }
            for j in 0..<d { centers[k * d + j] = rows[bestTrial * d + j] }
            for i in 0..<n { closest[i] = min(closest[i], candidateDistances[bestTrial][i]) }
        }
        return centers
    }

    /// Squared distances of every point to each of `targets` ([t, d]): one array per target.
    func distancesTo(_ points: some PointRows, _ targets: [Float]) -> [[Float]] {
        let t = targets.count / points.dimension
        var out = [[Float]](repeating: [Float](repeating: 0, count: points.count), count: t)
        forEachChunk(points, centers: targets) { range, squared in
            for k in 0..<t {
                for (i, p) in range.enumerated() { out[k][p] = squared[i * t + k] }
            }
        }
        return out
    }

    /// Assigns every point to its nearest centre; `visit(label, row)` sees each point with its new
    /// label. Returns the inertia and how many labels changed.
    func assign(_ points: some PointRows, centers: [Float], labels: inout [Int32], distances: inout [Float],
                visit: (Int, UnsafePointer<Float>) -> Void) -> (inertia: Double, changed: Int) {
        let d = points.dimension
        var inertia = 0.0, changed = 0
        forEachChunk(points, centers: centers) { range, squared, rows in
            for (i, p) in range.enumerated() {
                var best = 0
                for k in 1..<clusters where squared[i * clusters + k] < squared[i * clusters + best] { best = k }
                let distance = max(0, squared[i * clusters + best])
                inertia += Double(distance)
                distances[p] = distance
                if labels[p] != Int32(best) { changed += 1; labels[p] = Int32(best) }
                visit(best, rows + i * d)
            }
        }
        return (inertia, changed)
    }

    func forEachChunk(_ points: some PointRows, centers: [Float], _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        forEachChunk(points, centers: centers) { range, squared, _ in body(range, squared) }
    }

    /// For each chunk of points: the squared distances [chunk, t] to the t centres, and the rows.
    func forEachChunk(_ points: some PointRows, centers: [Float],
                      _ body: (Range<Int>, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
        let d = points.dimension, t = centers.count / d
        let centerNorms = (0..<t).map { k in (0..<d).reduce(Float(0)) { $0 + centers[k * d + $1] * centers[k * d + $1] } }
        var rows = [Float](repeating: 0, count: chunkRows * d)
        var products = [Float](repeating: 0, count: chunkRows * t)
        rows.withUnsafeMutableBufferPointer { x in
            products.withUnsafeMutableBufferPointer { g in
                centers.withUnsafeBufferPointer { c in
                    for first in stride(from: 0, to: points.count, by: chunkRows) {
                        let range = first..<min(first + chunkRows, points.count)
                        points.rows(range, into: x.baseAddress!)
                        // G = X Cᵀ, then |x|² - 2 G + |c|² in place.
                        BLAS.sgemm(transB: true, m: range.count, n: t, k: d, a: x.baseAddress!, lda: d,
                                   b: c.baseAddress!, ldb: d, c: g.baseAddress!, ldc: t)
                        for i in 0..<range.count {
                            var norm: Float = 0
                            for j in 0..<d { norm += x[i * d + j] * x[i * d + j] }
                            for k in 0..<t { g[i * t + k] = norm - 2 * g[i * t + k] + centerNorms[k] }
                        }
                        body(range, g.baseAddress!, x.baseAddress!)
                    }
                }
            }
        }
    }

    /// Mean over coordinates of their variance over the points.
    func meanVariance(_ points: some PointRows) -> Double {
        let d = points.dimension
        var sum = [Double](repeating: 0, count: d), squares = [Double](repeating: 0, count: d)
        forEachChunk(points, centers: [Float](repeating: 0, count: d)) { range, _, rows in
            for i in 0..<range.count {
                for j in 0..<d {
                    let v = Double(rows[i * d + j])
                    sum[j] += v
                    squares[j] += v * v
                }
            }
        }
        let n = Double(points.count)
        return (0..<d).reduce(0.0) { $0 + squares[$1] / n - (sum[$1] / n) * (sum[$1] / n) } / Double(d)
    }
}
