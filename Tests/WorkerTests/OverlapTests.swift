import Foundation
import Model
import Testing
@testable import Worker

/// A world of one that records the parts it is asked to reduce and when.
final class RecordingReducer: OverlappingReducer {
    private var raw: [(address: Int, count: Int)] = []
    var finishes = 0

    /// The queued parts as float offsets from the lowest address queued (the buffer's start).
    var parts: [Range<Int>] {
        let base = raw.map(\.address).min() ?? 0
        return raw.map { (($0.address - base) / 4)..<(($0.address - base) / 4 + $0.count) }
    }

    func startAllReduce(_ part: UnsafeMutableBufferPointer<Float>) {
        raw.append((Int(bitPattern: part.baseAddress), part.count))
    }
    func finishAll() throws { finishes += 1 }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { Issue.record("the overlapped path queues parts") }
}

@Suite struct OverlapTests {
    static func replica() -> TrainingReplica {
        let layout = ParameterLayout(config: .tiny)
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        parameters.withUnsafeMutableBufferPointer { initializeParameters($0, layout: layout, config: .tiny, seed: 4) }
        return TrainingReplica(model: SCVAEModel(config: .tiny, maxBatch: 2), parameters: parameters,
                               optimizer: Optimizer(settings: OptimizerSettings(), parameterCount: layout.totalCount), microBatch: 2)
    }

    static func images(count: Int) -> [Float] {
        let floats = 3 * ModelConfig.tiny.imageSize * ModelConfig.tiny.imageSize
        return (0..<(count * floats)).map { Float(sin(Double($0) * 0.37)) * 0.9 }
    }

    @Test func bucketsFollowTheBackwardStagesCoverTheBufferOnceAndChangeNothingInAWorldOfOne() throws {
        let pixels = Self.images(count: 3)
        let plain = Self.replica(), overlapped = Self.replica()
        plain.bucketElements = 0
        overlapped.bucketElements = 10_000
        let a = try pixels.withUnsafeBufferPointer { try plain.step(images: $0.baseAddress!, count: 3, reducer: SingleRankReducer()) }
        let recorder = RecordingReducer()
        let b = try pixels.withUnsafeBufferPointer { try overlapped.step(images: $0.baseAddress!, count: 3, reducer: recorder) }
        #expect(a == b)
        #expect(plain.parameters == overlapped.parameters, "a world of one: bucketing changes nothing")
        #expect(recorder.finishes == 1)
        let n = overlapped.parameterCount
        let stages = overlapped.model.backwardStages
        // The first parts are the decoder's (backward finishes it first), in buckets of at most 10,000.
        #expect(recorder.parts.first?.lowerBound == stages[0].lowerBound)
        #expect(recorder.parts.dropLast().allSatisfy { $0.count <= 10_000 })
        // Every float of the gradient and the trailer is queued exactly once.
        let covered = recorder.parts.sorted { $0.lowerBound < $1.lowerBound }
        #expect(covered.first?.lowerBound == 0)
        #expect(zip(covered, covered.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(covered.last!.upperBound > n, "the statistics trailer goes too")
    }

    @Test func backwardStagesTileTheLayoutInBackwardOrder() {
        for config in [ModelConfig.tiny, .small] {
            let model = SCVAEModel(config: config, maxBatch: 1)
            let stages = model.backwardStages
            #expect(stages.count == 3)
            #expect(stages.map(\.count).reduce(0, +) == model.layout.totalCount)
            #expect(stages[0].upperBound == model.layout.totalCount, "the decoder's parameters come last in the layout")
            #expect(model.layout.entries.filter { $0.name.hasPrefix("decoder.") }.allSatisfy { stages[0].contains($0.offset) })
        }
    }
}
