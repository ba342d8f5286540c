import Codes
import Foundation
import Images
import TensorFiles
import Testing

@Suite struct KMeansTests {
    /// Three tight blobs in 5-D around far-apart centres, interleaved; returns points and true blob of each.
    static func blobs(perBlob: Int = 40) -> (DenseRows, [Int]) {
        var random = KeyedRandom(key: 7)
        var values: [Float] = [], truth: [Int] = []
        for i in 0..<(3 * perBlob) {
            let blob = i % 3
            for j in 0..<5 { values.append(Float(blob == j % 3 ? 10 : 0) + random.unitFloat() - 0.5) }
            truth.append(blob)
        }
        return (DenseRows(values: values, dimension: 5), truth)
    }

    /// Sum of squared distances of each point to the given centres, in Double.
    static func inertia(_ points: DenseRows, _ centers: [Float], _ labels: [Int32]) -> Double {
        let d = points.dimension
        var total = 0.0
        for i in 0..<points.count {
            for j in 0..<d {
                let diff = Double(points.values[i * d + j]) - Double(centers[Int(labels[i]) * d + j])
                total += diff * diff
            }
        }
        return total
    }

    @Test func findsSeparatedBlobsAndReportsTheirInertia() {
        let (points, truth) = Self.blobs()
        let result = KMeans(clusters: 3, seed: 1).fit(points)
        // The same partition as the truth, whatever the cluster numbers.
        var clusterOfBlob: [Int: Int32] = [:]
        for (i, blob) in truth.enumerated() {
            if let known = clusterOfBlob[blob] { #expect(known == result.labels[i]) } else { clusterOfBlob[blob] = result.labels[i] }
        }
        #expect(Set(clusterOfBlob.values).count == 3)
        let recomputed = Self.inertia(points, result.centers, result.labels)
        #expect(abs(result.inertia - recomputed) <= 1e-4 * recomputed, "\(result.inertia) vs \(recomputed)")
    }

    @Test func chunkingAndSparseStorageDoNotChangeTheResult() {
        let (points, _) = Self.blobs(perBlob: 30)
        let whole = KMeans(clusters: 4, seed: 3, chunkRows: 4096).fit(points)
        let chunked = KMeans(clusters: 4, seed: 3, chunkRows: 7).fit(points)
        #expect(whole.labels == chunked.labels)
        var sparse = SparseCodes(atoms: 5)
        sparse.append(dense: points.values)
        let fromSparse = KMeans(clusters: 4, seed: 3, chunkRows: 7).fit(sparse)
        #expect(fromSparse.labels == whole.labels)
        #expect(KMeans(clusters: 4, seed: 4).fit(points).labels.count == points.count)
        // The final labels are the nearest centres.
        #expect(KMeans(clusters: 4).nearest(points, centers: whole.centers) == whole.labels)
    }

    static let sklearnAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sklearn"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// On the patch codes of real images, as good as scikit-learn's KMeans (best of 10 starts) to 1%.
    @Test(.enabled(if: sklearnAvailable, "scikit-learn is not importable")) func inertiaWithinOnePercentOfScikitLearn() throws {
        let folder = try TemporaryFolder()
        let images = try folder.folder("images")
        try TestImages.write(12, into: images)
        let model = CodeModel(weights: try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny))
        let file = try CodesFile.encode(try ImageInputs(path: images), with: model)
        let clusters = 6
        let ours = KMeans(clusters: clusters, seed: 0, initializations: 10).fit(file.codes)
        let dense = file.codes.dense(rows: 0..<file.codes.rowCount)
        try NPY.write(NPYArray(shape: [file.codes.rowCount, 128], values: dense), to: folder.file("codes.npy"))
        try NPY.write(NPYArray(shape: [clusters, 128], values: ours.centers), to: folder.file("centers.npy"))
        try NPY.write(NPYArray(shape: [ours.labels.count], values: ours.labels.map(Float.init)), to: folder.file("labels.npy"))
        let script = """
            import sys, numpy as np
            from sklearn.cluster import KMeans
            x = np.load(sys.argv[1]).astype(np.float64); c = np.load(sys.argv[2]).astype(np.float64)
            labels = np.load(sys.argv[3]).astype(np.int64)
            ours = ((x - c[labels]) ** 2).sum()
            best = KMeans(n_clusters=\(clusters), n_init=10, random_state=0).fit(x.astype(np.float32)).inertia_
            print(f"{float(best)!r} {float(ours)!r}")
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, folder.file("codes.npy"), folder.file("centers.npy"), folder.file("labels.npy")]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let numbers = output.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(process.terminationStatus == 0 && numbers.count == 2, "python printed: \(output)")
        let (sklearn, checked) = (numbers[0], numbers[1])
        print("k-means on \(file.codes.rowCount) patch codes, K=\(clusters): inertia \(ours.inertia), scikit-learn \(sklearn)")
        #expect(abs(ours.inertia - checked) <= 1e-4 * checked, "our inertia \(ours.inertia), recomputed by numpy \(checked)")
        #expect(ours.inertia <= 1.01 * sklearn, "ours \(ours.inertia), scikit-learn \(sklearn)")
    }
}

@Suite struct MatchingTests {
    /// The best total by trying every assignment of rows to distinct columns.
    static func bruteForce(_ score: [[Double]]) -> Double {
        let rows = score.count, columns = score[0].count
        func best(_ row: Int, _ used: Set<Int>) -> Double {
            if row == rows || used.count == columns { return 0 }
            var top = rows - row > columns - used.count ? best(row + 1, used) : -Double.infinity
            for c in 0..<columns where !used.contains(c) { top = max(top, score[row][c] + best(row + 1, used.union([c]))) }
            return top
        }
        return best(0, [])
    }

    @Test(arguments: [(4, 4), (3, 6), (6, 3), (1, 5), (5, 1)]) func maximumScoreMatchesExhaustiveSearch(rows: Int, columns: Int) {
        var random = KeyedRandom(key: UInt64(rows * 10 + columns))
        for _ in 0..<20 {
            let score = (0..<rows).map { _ in (0..<columns).map { _ in Double(random.below(100)) / 10 } }
            let pairs = Matching.maximumScore(score)
            #expect(pairs.count == min(rows, columns))
            #expect(Set(pairs.map(\.row)).count == pairs.count && Set(pairs.map(\.column)).count == pairs.count)
            let total = pairs.reduce(0.0) { $0 + score[$1.row][$1.column] }
            #expect(abs(total - Self.bruteForce(score)) < 1e-9, "\(score)")
        }
    }
}

@Suite struct SegmentationScoreTests {
    @Test func perfectUpToRenamingScoresOne() {
        let score = SegmentationScore(confusion: [[0, 50, 0], [30, 0, 0], [0, 0, 20]])
        #expect(score.meanIoU == 1 && score.pixelAccuracy == 1)
        #expect(score.clusterOfClass == [1, 0, 2])
    }

    @Test func scoresByTheBestMatching() {
        // Class 0: 60 pixels (40 in cluster 0, 20 in cluster 1); class 1: 40 pixels (10 in cluster 0, 30 in cluster 1).
        let score = SegmentationScore(confusion: [[40, 20], [10, 30]])
        #expect(score.clusterOfClass == [0, 1])
        let expected: [Double] = [40.0 / 70, 30.0 / 60]
        #expect(score.classIoU == expected)
        #expect(score.pixelAccuracy == 0.7)
        // More clusters than classes: the unmatched cluster's pixels are wrong.
        let extra = SegmentationScore(confusion: [[40, 0, 10], [0, 50, 0]])
        #expect(extra.clusterOfClass == [0, 1] && extra.pixelAccuracy == 0.9)
        // More classes than clusters: the unmatched class scores 0.
        let missing = SegmentationScore(confusion: [[40, 0], [0, 50], [5, 5]])
        #expect(missing.classIoU[2] == 0 && missing.clusterOfClass[2] == -1)
    }
}
