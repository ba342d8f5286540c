/// How Conv2dDirect's 3x3 backward pass works through a batch. A pure value of the geometry and
/// the row strides, never of the thread count, so the gradients' bits do not depend on the threads.
///
/// - **Groups**: consecutive images padded into one stacked buffer per tensor (about `stackBudget`
///   floats each), whose weight-gradient product runs over all of their rows at once.
/// - **Parts**: the weight gradient's depth in runs that are each summed from zero into a sum of
///   their own: a whole group, or a band of rows of an image larger than `partPixels`. The parts'
///   sums are added in order afterwards. Parts are what lets many threads share a weight gradient:
///   the tiles of every part of a wave are chunks of one pool job.
/// - **Waves**: consecutive groups whose buffers (about `waveBudget` floats with the parts' sums)
///   are filled by one pool job and used by the next.
struct DirectBackwardPlan {
    /// Depth rows of one part: all the rows of a group's images when `rows` is the whole image
    /// (0 ..< H), else image rows `rows` of the group's one image.
    struct Part {
        var group: Int
        var rows: Range<Int>
    }

    /// Groups of `groups` and parts of `parts` (indices) handled by one fill and one product.
    struct Wave {
        var groups: Range<Int>
        var parts: Range<Int>
    }

    /// Floats per stacked padded buffer (1 MiB, so that a group's rows stay in a large L2 between
    /// its padding and its products): small maps are stacked many images to a product, large ones
    /// go one image at a time.
    static let stackBudget = 1 << 18

    /// Pixels per part of a large image (and rows per part of a 1x1 convolution's weight gradient).
    /// Each part costs one sum of the weight gradient's size in zeroing and adding: at 2,048 pixels
    /// about 0.3% of the part's products.
    static let partPixels = 2048

    /// Floats of padded buffers and parts' sums per wave (64 MiB): enough for the waves of a batch
    /// of 16 of small's maps to be one, and a bound on the memory of the ImageNet configurations.
    static let waveBudget = 1 << 24

    let groups: [Range<Int>]
    let parts: [Part]
    let waves: [Wave]
    /// Images per group (the last group may hold fewer).
    let imagesPerGroup: Int
    /// Padded rows per image: (H + 2) * Wp.
    let rowsPerImage: Int
    /// Padded rows per group of each stacked buffer: imagesPerGroup * (H + 2) * Wp, and 2 rows the
    /// last taps reach past the end.
    let rowsPerGroup: Int

    init(geometry g: Conv2dGeometry, inputStride: Int, outputStride: Int, imagesPerGroup: Int? = nil,
         partPixels: Int = partPixels, waveBudget: Int = waveBudget) {
        let (h, w) = (g.height, g.width)
        let imageRows = (h + 2) * (w + 2)
        let perGroup = max(1, min(g.batch, imagesPerGroup ?? Self.stackBudget / (imageRows * max(inputStride, outputStride))))
        self.imagesPerGroup = perGroup
        rowsPerImage = imageRows
        let groups = consecutiveRanges(covering: g.batch, size: perGroup)
        self.groups = groups
        let rowsPerPart = perGroup == 1 && h * w > partPixels ? max(1, partPixels / w) : h
        let bands = consecutiveRanges(covering: h, size: rowsPerPart)
        parts = groups.indices.flatMap { group in bands.map { Part(group: group, rows: $0) } }
        rowsPerGroup = perGroup * imageRows + 2
        let groupFloats = rowsPerGroup * (inputStride + outputStride) + bands.count * g.weightCount
        waves = consecutiveRanges(covering: groups.count, size: max(1, waveBudget / groupFloats)).map { waveGroups in
            Wave(groups: waveGroups, parts: (waveGroups.lowerBound * bands.count)..<(waveGroups.upperBound * bands.count))
        }
    }

    /// Images of a wave's groups.
    func images(of wave: Wave) -> Range<Int> {
        groups[wave.groups.lowerBound].lowerBound..<groups[wave.groups.upperBound - 1].upperBound
    }

    /// The padded row of a wave's stacked buffers where `image` (one of the wave's) starts.
    func firstRow(of image: Int, in wave: Wave) -> Int {
        let group = image / imagesPerGroup
        return (group - wave.groups.lowerBound) * rowsPerGroup + (image - group * imagesPerGroup) * rowsPerImage
    }

    /// The most groups any wave holds: what the stacked buffers are sized for.
    var mostGroupsPerWave: Int { waves.map(\.groups.count).max() ?? 0 }
}

/// 0 ..< count in consecutive ranges of `size` (the last may be shorter).
func consecutiveRanges(covering count: Int, size: Int) -> [Range<Int>] {
    stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
}
