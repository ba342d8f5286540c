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

/// Resizes an RGB image to `width` x `height` and returns the window `columns` x `rows` of the
/// result as Float HWC values on the 0...255 scale. Only the window is computed.
func resampleWindow(_ image: RGBImage, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>) -> [Float] {
    let horizontal = ResampleTaps(inputSize: image.width, outputSize: width, outputs: columns)
    let vertical = ResampleTaps(inputSize: image.height, outputSize: height, outputs: rows)
    let inputRows = vertical.inputRange
    let windowWidth = columns.count

    // Horizontal pass over only the input rows the vertical pass will read.
    var across = [Float](repeating: 0, count: inputRows.count * windowWidth * 3)
    image.pixels.withUnsafeBufferPointer { source in
        across.withUnsafeMutableBufferPointer { target in
            horizontal.withUnsafeTaps { firsts, counts, weights in
                for (r, y) in inputRows.enumerated() {
                    let sourceRow = y * image.width * 3
                    let targetRow = r * windowWidth * 3
                    for c in 0..<windowWidth {
                        let w = c * horizontal.stride
                        var red: Float = 0, green: Float = 0, blue: Float = 0
                        var p = sourceRow + firsts[c] * 3
                        for t in 0..<counts[c] {
                            let weight = weights[w + t]
                            red += weight * Float(source[p])
                            green += weight * Float(source[p + 1])
                            blue += weight * Float(source[p + 2])
                            p += 3
                        }
                        target[targetRow + c * 3] = red
                        target[targetRow + c * 3 + 1] = green
                        target[targetRow + c * 3 + 2] = blue
                    }
                }
            }
        }
    }

    // Vertical pass.
    let rowLength = windowWidth * 3
    var out = [Float](repeating: 0, count: rows.count * rowLength)
    across.withUnsafeBufferPointer { source in
        vertical.weights.withUnsafeBufferPointer { weights in
            out.withUnsafeMutableBufferPointer { target in
                for r in 0..<rows.count {
                    let start = vertical.first[r] - inputRows.lowerBound, taps = vertical.count[r]
                    let w = r * vertical.stride
                    let targetRow = r * rowLength
                    for t in 0..<taps {
                        let weight = weights[w + t]
                        let sourceRow = (start + t) * rowLength
                        for k in 0..<rowLength {
                            target[targetRow + k] += weight * source[sourceRow + k]
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Resizes an RGB image to `width` x `height` (antialiased tent filter, rounded to 8 bits).
public func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
    let values = resampleWindow(image, width: width, height: height, columns: 0..<width, rows: 0..<height)
    let pixels = values.map { UInt8(min(255, max(0, $0.rounded()))) }
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
