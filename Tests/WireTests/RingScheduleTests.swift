import Testing
@testable import Wire

/// Socket-free tests of the ring Instance: N machines exchange pieces through in-memory queues.
@Suite struct RingScheduleTests {
    static let lengths = [0, 1, 2, 3, 7, 8, 13, 64, 100, 1000, 1031]

    @Test func chunksTileTheBufferForEveryLengthAndWorldSize() {
        for worldSize in 1...8 {
            for length in Self.lengths {
                let schedule = RingSchedule(rank: 0, worldSize: worldSize, elementCount: length)
                var next = 0
                for chunk in 0..<worldSize {
                    let range = schedule.chunkRange(chunk)
                    #expect(range.lowerBound == next, "N=\(worldSize) L=\(length) chunk \(chunk)")
                    #expect(range.count == length / worldSize || range.count == length / worldSize + 1)
                    next = range.upperBound
                }
                #expect(next == length)
            }
        }
    }

    /// Each rank sends 2(N-1)/N of the buffer, up to the rounding of chunk sizes (at most one
    /// element per chunk, so at most 2 elements off).
    @Test func eachRankSendsTwoNMinusOneOverNOfTheBuffer() {
        for worldSize in 1...8 {
            for length in Self.lengths {
                for rank in 0..<worldSize {
                    let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: length, pieceElements: 5)
                    let ideal = Double(2 * (worldSize - 1)) / Double(worldSize) * Double(length)
                    let sent = RingPlan.allReduce(schedule).elementsSent
                    #expect(sent == schedule.elementsSent)
                    #expect(abs(Double(sent) - ideal) <= 2, "N=\(worldSize) L=\(length) rank \(rank): \(sent) vs \(ideal)")
                    #expect(RingPlan.allReduce(schedule).receives.count ==
                            (0..<schedule.stepCount).reduce(0) { $0 + schedule.pieces(of: schedule.chunkRange(schedule.receiveChunk(atStep: $1))).count })
                }
            }
        }
    }

    @Test func allReduceMatchesAPlainSumAndIsBitIdenticalOnEveryRank() throws {
        for worldSize in 1...8 {
            for length in Self.lengths {
                for pieceElements in [1, 3, 64] {
                    let inputs = Self.inputs(worldSize: worldSize, length: length, seed: UInt64(worldSize * 1000 + length))
                    let (results, bytesSent) = try Self.runAllReduce(inputs, pieceElements: pieceElements)
                    let context = "N=\(worldSize) L=\(length) piece=\(pieceElements)"
                    for rank in 0..<worldSize {
                        // Bit-identical across ranks.
                        #expect(results[rank].map(\.bitPattern) == results[0].map(\.bitPattern), "\(context) rank \(rank)")
                        let expectedBytes = RingSchedule(rank: rank, worldSize: worldSize, elementCount: length).elementsSent * 4
                        #expect(bytesSent[rank] == expectedBytes, "\(context) rank \(rank) bytes")
                    }
                    let schedule = RingSchedule(rank: 0, worldSize: worldSize, elementCount: length)
                    for index in 0..<length {
                        let reference = inputs.reduce(0.0) { $0 + Double($1[index]) }
                        let magnitude = inputs.reduce(0.0) { $0 + abs(Double($1[index])) }
                        #expect(abs(Double(results[0][index]) - reference) <= 1e-6 * max(magnitude, 1), "\(context) [\(index)]")
                        // The documented order: chunk c sums from rank c around the ring.
                        let chunk = (0..<worldSize).first { schedule.chunkRange($0).contains(index) } ?? 0
                        var ordered: Float = inputs[chunk][index]
                        for hop in 1..<max(worldSize, 1) { ordered += inputs[(chunk + hop) % worldSize][index] }
                        #expect(results[0][index].bitPattern == ordered.bitPattern, "\(context) order [\(index)]")
                    }
                }
            }
        }
    }

    @Test func repeatedRunsGiveTheSameBytes() throws {
        let inputs = Self.inputs(worldSize: 5, length: 777, seed: 42)
        let first = try Self.runAllReduce(inputs, pieceElements: 16).results
        let second = try Self.runAllReduce(inputs, pieceElements: 100).results
        #expect(first[0].map(\.bitPattern) == second[0].map(\.bitPattern))
    }

    @Test func broadcastFromEveryRoot() throws {
        for worldSize in 1...6 {
            for root in 0..<worldSize {
                for length in [0, 1, 5, 300] {
                    let inputs = Self.inputs(worldSize: worldSize, length: length, seed: UInt64(root))
                    let results = try Self.run(inputs) { rank in
                        RingPlan.broadcast(rank: rank, worldSize: worldSize, root: root, elementCount: length, pieceElements: 7)
                    }.results
                    for rank in 0..<worldSize {
                        #expect(results[rank].map(\.bitPattern) == inputs[root].map(\.bitPattern), "N=\(worldSize) root \(root) rank \(rank)")
                    }
                }
            }
        }
    }

    @Test func stalePiecesAreDroppedAndNewerGenerationsAreErrors() throws {
        let plan = RingPlan.allReduce(RingSchedule(rank: 1, worldSize: 2, elementCount: 4))
        var machine = RingMachine(plan: plan, rank: 1, worldSize: 2, generation: 5, sequence: 3, checksumsData: true)
        var buffer: [Float] = [1, 2, 3, 4]
        let data: [Float] = [10, 20]
        let header = RingChunkHeader(collective: .allReduce, sequence: 3, sourceRank: 0, ringStep: 0, piece: 0,
                                     elementOffset: 0, elementCount: 2)
        try buffer.withUnsafeMutableBufferPointer { target in
            try data.withUnsafeBytes { raw in
                #expect(try machine.accept(generation: 4, header: header, data: raw, buffer: target) == .dropped(generation: 4, sequence: 3))
                var older = header; older.sequence = 2
                #expect(try machine.accept(generation: 5, header: older, data: raw, buffer: target) == .dropped(generation: 5, sequence: 2))
                #expect(throws: RingError.newerGeneration(rank: 0, found: 6, current: 5)) {
                    try machine.accept(generation: 6, header: header, data: raw, buffer: target)
                }
                var wrongStep = header; wrongStep.ringStep = 1
                #expect(throws: RingError.self) { try machine.accept(generation: 5, header: wrongStep, data: raw, buffer: target) }
                var corrupted = header; corrupted.dataChecksum = crc32c(raw) ^ 1
                #expect(throws: RingError.dataChecksum(rank: 0, step: 0, piece: 0, expected: crc32c(raw) ^ 1, computed: crc32c(raw))) {
                    try machine.accept(generation: 5, header: corrupted, data: raw, buffer: target)
                }
                let outcome = try machine.accept(generation: 5, header: header, data: raw, buffer: target)
                guard case let .applied(forward) = outcome, let forward else { Issue.record("\(outcome)"); return }
                #expect(forward.range == 0..<2 && forward.header.ringStep == 1)
            }
        }
        #expect(buffer == [11, 22, 3, 4])
    }

    // MARK: Harness

    static func inputs(worldSize: Int, length: Int, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<worldSize).map { _ in
            (0..<length).map { _ in Float(Int64(bitPattern: rng.next() >> 11) % 2_000_001 - 1_000_000) / 997.0 }
        }
    }

    static func runAllReduce(_ inputs: [[Float]], pieceElements: Int) throws -> (results: [[Float]], bytesSent: [Int]) {
        let worldSize = inputs.count
        let length = inputs.first?.count ?? 0
        return try run(inputs) { rank in
            RingPlan.allReduce(RingSchedule(rank: rank, worldSize: worldSize, elementCount: length, pieceElements: pieceElements))
        }
    }

    /// Drives N machines round-robin; rank r's sends go to rank r+1's queue (copies of the bytes).
    static func run(_ inputs: [[Float]], plan: (Int) -> RingPlan) throws -> (results: [[Float]], bytesSent: [Int]) {
        let worldSize = inputs.count
        var buffers = inputs
        var machines = (0..<worldSize).map {
            RingMachine(plan: plan($0), rank: $0, worldSize: worldSize, generation: 1, sequence: 0, checksumsData: true)
        }
        var queues = [[(RingChunkHeader, [Float])]](repeating: [], count: worldSize)
        var bytesSent = [Int](repeating: 0, count: worldSize)
        func post(_ send: RingMachine.Send, from rank: Int) {
            queues[(rank + 1) % worldSize].append((send.header, Array(buffers[rank][send.range])))
            bytesSent[rank] += send.range.count * 4
        }
        for rank in 0..<worldSize {
            let sends = buffers[rank].withUnsafeBufferPointer { machines[rank].initialSends(buffer: $0) }
            for send in sends { post(send, from: rank) }
        }
        var rounds = 0
        while machines.contains(where: { !$0.isComplete }) {
            rounds += 1
            guard rounds < 1_000_000 else { throw RingError.bufferStillInUse(seconds: 0) }
            for rank in 0..<worldSize where !queues[rank].isEmpty {
                let (header, data) = queues[rank].removeFirst()
                let outcome = try buffers[rank].withUnsafeMutableBufferPointer { target in
                    try data.withUnsafeBytes { try machines[rank].accept(generation: 1, header: header, data: $0, buffer: target) }
                }
                if case let .applied(forward?) = outcome { post(forward, from: rank) }
            }
        }
        let drained = queues.allSatisfy { $0.isEmpty }
        #expect(drained)
        return (buffers, bytesSent)
    }
}

@Suite struct GradientBucketTests {
    @Test func contiguousTensorsMergeUntilTheBucketIsFull() {
        let ranges = [0..<10, 10..<15, 15..<40, 40..<41]
        #expect(GradientBuckets.plan(tensorRanges: ranges.reversed(), bucketElements: 20) == [15..<41, 0..<15])
        #expect(GradientBuckets.plan(tensorRanges: ranges, bucketElements: 1) == ranges)
        #expect(GradientBuckets.plan(tensorRanges: ranges, bucketElements: 1000) == [0..<41])
        // A gap in memory starts a new bucket; empty tensors are skipped.
        #expect(GradientBuckets.plan(tensorRanges: [0..<5, 5..<5, 8..<9], bucketElements: 100) == [0..<5, 8..<9])
    }
}
