import TensorFiles
/// Antialiased resampling with a triangle (tent) filter, separable in x and y.
///
/// Output pixel o of a resize from `n` to `m` pixels covers input interval
/// [o * s, (o + 1) * s) with s = n / m; its centre is c = (o + 0.5) * s. Input pixel j (centre
/// j + 0.5) contributes with weight tent((j + 0.5 - c) / r), tent(t) = max(0, 1 - |t|), where the
/// radius r = max(s, 1). When upsampling (s < 1) this is linear interpolation between the two
/// nearest pixels; when downsampling the tent widens with the factor so that every input pixel
/// contributes and fine detail is averaged instead of aliased. Weights of each output pixel are
/// divided by their sum, which also handles the image border (taps outside are dropped).

/// The taps of one axis: for each output position, the first input index and its weights.
struct ResampleTaps {
    /// First input index of each output position.
    var first: [Int]
    /// Number of taps of each output position.
    var count: [Int]
    /// Weights, `stride` per output position (unused ones zero).
    var weights: [Float]
    var stride: Int

    /// Taps for output positions `outputs` of a resize from `inputSize` to `outputSize`.
    init(inputSize: Int, outputSize: Int, outputs: Range<Int>) {
        precondition(inputSize > 0 && outputSize > 0, "ResampleTaps: sizes must be positive")
        let scale = Double(inputSize) / Double(outputSize)
        let radius = max(scale, 1)
        stride = Int((radius * 2).rounded(.up)) + 2
        first = []
        count = []
        weights = []
        first.reserveCapacity(outputs.count)
        count.reserveCapacity(outputs.count)
        weights.reserveCapacity(outputs.count * stride)
        var row = [Double](repeating: 0, count: stride)
        for o in outputs {
            let centre = (Double(o) + 0.5) * scale
            let low = max(0, Int((centre - radius - 0.5).rounded(.down)))
            let high = min(inputSize, Int((centre + radius + 0.5).rounded(.up)))
            var taps = 0
            var total = 0.0
            var start = -1
            for j in low..<high {
                let weight = max(0, 1 - abs(Double(j) + 0.5 - centre) / radius)
                if weight == 0 { continue }
                if start < 0 { start = j }
                // Zero weights between nonzero ones cannot occur for a tent, so taps are contiguous.
                row[j - start] = weight
                taps = j - start + 1
                total += weight
            }
            if start < 0 {  // Only possible for degenerate sizes: take the nearest pixel.
                start = min(inputSize - 1, max(0, Int(centre)))
                row[0] = 1
                taps = 1
                total = 1
            }
            first.append(start)
            count.append(taps)
            for t in 0..<stride { weights.append(t < taps ? Float(row[t] / total) : 0) }
            for t in 0..<stride { row[t] = 0 }
        }
    }

    /// Calls `body` with unchecked views of `first`, `count` and `weights`.
    func withUnsafeTaps<T>(_ body: (UnsafeBufferPointer<Int>, UnsafeBufferPointer<Int>, UnsafeBufferPointer<Float>) -> T) -> T {
        first.withUnsafeBufferPointer { firsts in
            count.withUnsafeBufferPointer { counts in
                weights.withUnsafeBufferPointer { weights in body(firsts, counts, weights) }
            }
        }
    }

    /// The input range every output position of these taps reads.
    var inputRange: Range<Int> {
        guard let low = first.min() else { return 0..<0 }
        let high = zip(first, count).map { $0 + $1 }.max()!
        return low..<high
    }
}

/// How `resampleWindow` writes its values: v * scale + offset, clamped to `lowest...highest`,
/// as three planes (CHW), each row mirrored if `flip`.
struct ResampleOutput {
    var scale: Float = 1
    var offset: Float = 0
    var lowest: Float = 0
    var highest: Float = 255
    var flip = false
}

/// Resizes an RGB image to `width` x `height` and writes the window `columns` x `rows` of the
/// result (values on the 0...255 scale, mapped by `output`) to `planes` as CHW floats,
/// 3 * columns.count * rows.count of them. Only the window is computed.
///
/// Each output row is made in two passes: a vertical blend of the input rows it covers, over only
/// the input columns the window reads (contiguous UInt8 in, Float out, so it vectorises), then the
/// horizontal taps on that one blended row, all three channels at once as a SIMD4.
func resampleWindow(_ image: RGBImage, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>,
                    output: ResampleOutput, into planes: UnsafeMutablePointer<Float>) {
    let horizontal = ResampleTaps(inputSize: image.width, outputSize: width, outputs: columns)
    let vertical = ResampleTaps(inputSize: image.height, outputSize: height, outputs: rows)
    let inputColumns = horizontal.inputRange
    let span = inputColumns.count * 3
    let inputRowLength = image.width * 3
    let plane = columns.count * rows.count
    let floatSize = MemoryLayout<Float>.stride
    // Byte offset in the blended row of each output column's first tap.
    let tapOffsets = horizontal.first.map { ($0 - inputColumns.lowerBound) * 3 * floatSize }
    // One spare value: the horizontal pass loads four floats per pixel and ignores the fourth.
    var blended = [Float](repeating: 0, count: span + 1)
    image.pixels.withUnsafeBufferPointer { pixels in
        blended.withUnsafeMutableBufferPointer { blended in
            tapOffsets.withUnsafeBufferPointer { tapOffsets in
                horizontal.withUnsafeTaps { _, hCounts, hWeights in
                    vertical.withUnsafeTaps { vFirsts, vCounts, vWeights in
                        let source = pixels.baseAddress! + inputColumns.lowerBound * 3
                        let mixed = blended.baseAddress!
                        let across = UnsafeRawPointer(mixed)
                        let scale = SIMD4<Float>(repeating: output.scale), offset = SIMD4<Float>(repeating: output.offset)
                        let lowest = SIMD4<Float>(repeating: output.lowest), highest = SIMD4<Float>(repeating: output.highest)
                        for r in 0..<rows.count {
                            // Vertical pass.
                            let w = r * vertical.stride
                            var line = source + vFirsts[r] * inputRowLength
                            var weight = vWeights[w]
                            for k in 0..<span { mixed[k] = weight * Float(line[k]) }
                            for t in 1..<vCounts[r] {
                                line += inputRowLength
                                weight = vWeights[w + t]
                                for k in 0..<span { mixed[k] += weight * Float(line[k]) }
                            }
                            // Horizontal pass, written to the three planes (right to left if flipped).
                            var target = r * columns.count + (output.flip ? columns.count - 1 : 0)
                            let step = output.flip ? -1 : 1
                            for c in 0..<columns.count {
                                let h = c &* horizontal.stride
                                var at = tapOffsets[c]
                                var sum = SIMD4<Float>()
                                for t in 0..<hCounts[c] {
                                    sum += hWeights[h &+ t] * across.loadUnaligned(fromByteOffset: at, as: SIMD4<Float>.self)
                                    at &+= 3 &* floatSize
                                }
                                let value = pointwiseMin(pointwiseMax(sum * scale + offset, lowest), highest)
                                planes[target] = value.x
                                planes[plane &+ target] = value.y
                                planes[2 &* plane &+ target] = value.z
                                target &+= step
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Resizes an RGB image to `width` x `height` (antialiased tent filter, rounded to 8 bits).
public func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
    let plane = width * height
    var values = [Float](repeating: 0, count: 3 * plane)
    values.withUnsafeMutableBufferPointer {
        resampleWindow(image, width: width, height: height, columns: 0..<width, rows: 0..<height,
                       output: ResampleOutput(), into: $0.baseAddress!)
    }
    var pixels = [UInt8](repeating: 0, count: 3 * plane)
    for p in 0..<plane {
        for c in 0..<3 { pixels[3 * p + c] = UInt8(values[c * plane + p].rounded()) }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// The size after scaling the shorter side to `shorterSide`, keeping the aspect ratio: the longer
/// side becomes floor(shorterSide * longer / shorter), as torchvision's Resize(int) computes it.
public func sizeWithShorterSide(width: Int, height: Int, shorterSide: Int) -> (width: Int, height: Int) {
    if width <= height {
        return (shorterSide, max(1, shorterSide * height / width))
    }
    return (max(1, shorterSide * width / height), shorterSide)
}
