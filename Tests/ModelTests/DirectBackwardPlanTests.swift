import Testing
@testable import Model

/// DirectBackwardPlan, the split of a 3x3 backward pass into groups, parts and waves: every pixel
/// of the batch in exactly one part, in order; waves that cover the groups and parts in order
/// within their memory budget; and the splits of the configurations' layers.
@Suite struct DirectBackwardPlanTests {
    static let geometries: [Conv2dGeometry] = [
        .same3x3(batch: 16, height: 64, width: 64, inChannels: 64, outChannels: 64),
        .same3x3(batch: 16, height: 16, width: 16, inChannels: 128, outChannels: 128),
        .same3x3(batch: 8, height: 256, width: 256, inChannels: 128, outChannels: 128),
        .same3x3(batch: 5, height: 7, width: 3, inChannels: 4, outChannels: 5),
        .same3x3(batch: 1, height: 1, width: 1, inChannels: 2, outChannels: 3),
    ]

    @Test(arguments: 0..<geometries.count, [nil, 1, 2])
    func everyPixelIsInOnePartInOrder(index: Int, imagesPerGroup: Int?) {
        let g = Self.geometries[index]
        for partPixels in [1, 5, DirectBackwardPlan.partPixels] {
            let plan = DirectBackwardPlan(geometry: g, inputStride: g.inChannels, outputStride: g.outChannels,
                                          imagesPerGroup: imagesPerGroup, partPixels: partPixels)
            let ranges = plan.pixelRanges(g)
            #expect(plan.parts.allSatisfy { plan.groups[$0.group].count == 1 || $0.rows == 0..<g.height },
                    "a part of a group of several images is the whole group")
            #expect(ranges.first?.lowerBound == 0)
            #expect(ranges.last?.upperBound == g.batch * g.height * g.width)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "\(g): parts leave a gap or overlap")
            #expect(ranges.allSatisfy { !$0.isEmpty })
            // Groups: consecutive images, all of the stated size but the last.
            #expect(plan.groups.flatMap { Array($0) } == Array(0..<g.batch))
            #expect(plan.groups.dropLast().allSatisfy { $0.count == plan.imagesPerGroup })
            // A part of one image holds whole rows, at most partPixels of them unless a row is longer.
            for part in plan.parts where part.rows != 0..<g.height {
                #expect(part.rows.count == max(1, partPixels / g.width) || part.rows.upperBound == g.height)
            }
        }
    }

    @Test(arguments: 0..<geometries.count)
    func wavesCoverGroupsAndPartsInOrderWithinTheBudget(index: Int) {
        let g = Self.geometries[index]
        for budget in [1, 1 << 16, DirectBackwardPlan.waveBudget] {
            let plan = DirectBackwardPlan(geometry: g, inputStride: g.inChannels + 16, outputStride: g.outChannels,
                                          waveBudget: budget)
            #expect(plan.waves.flatMap { Array($0.groups) } == Array(plan.groups.indices))
            #expect(plan.waves.flatMap { Array($0.parts) } == Array(plan.parts.indices))
            for wave in plan.waves {
                #expect(wave.parts.allSatisfy { wave.groups.contains(plan.parts[$0].group) }, "a wave's parts are of its groups")
                let floats = wave.groups.count * plan.rowsPerGroup * (g.inChannels + 16 + g.outChannels)
                    + wave.parts.count * g.weightCount
                #expect(wave.groups.count == 1 || floats <= budget, "\(g): a wave of \(floats) floats over a budget of \(budget)")
                // Each image's padded rows, and the 2 rows past the last, lie in the wave's buffers without overlapping.
                let rows = plan.images(of: wave).map { plan.firstRow(of: $0, in: wave) }
                #expect(rows.first == 0 && zip(rows, rows.dropFirst()).allSatisfy { $1 - $0 >= plan.rowsPerImage })
                #expect(rows.last! + plan.rowsPerImage + 2 <= wave.groups.count * plan.rowsPerGroup)
            }
            #expect(plan.images(of: plan.waves[0]).lowerBound == 0)
            #expect(plan.images(of: plan.waves.last!).upperBound == g.batch)
        }
    }

    /// The configurations' maps: small's 64 x 64 and 16 x 16 levels, and an ImageNet 256 x 256 level.
    @Test func splitsOfTheConfigurationsLayers() {
        let ld = Conv2dDirect.leadingDimension
        func plan(_ g: Conv2dGeometry) -> DirectBackwardPlan {
            DirectBackwardPlan(geometry: g, inputStride: ld(g.inChannels), outputStride: ld(g.outChannels))
        }
        // One image per group (66 * 66 rows of 64 floats are over 1 MiB), two parts each, one wave.
        let large = plan(Self.geometries[0])
        #expect(large.groups.count == 16 && large.parts.count == 32 && large.waves.count == 1)
        // 18 * 18 rows of 144 floats: five images to a group.
        let small = plan(Self.geometries[1])
        #expect(small.groups.map(\.count) == [5, 5, 5, 1] && small.parts.count == 4 && small.waves.count == 1)
        // 65,536 pixels an image: parts of 8 rows; a group's buffers (38 MiB each) fill a wave alone.
        let imagenet = plan(Self.geometries[2])
        #expect(imagenet.groups.count == 8 && imagenet.parts.count == 8 * 32 && imagenet.waves.count == 8)
        #expect(imagenet.parts.allSatisfy { $0.rows.count == 8 })
    }
}

extension DirectBackwardPlan {
    /// The pixels of the batch (b * H * W + y * W + x) that each part sums over, in part order.
    func pixelRanges(_ g: Conv2dGeometry) -> [Range<Int>] {
        let pixels = g.height * g.width
        return parts.map { part in
            let images = groups[part.group]
            return (images.lowerBound * pixels + part.rows.lowerBound * g.width)..<((images.upperBound - 1) * pixels
                + part.rows.upperBound * g.width)
        }
    }
}
