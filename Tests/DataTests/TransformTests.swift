import Testing
@testable import Images

private func image(width: Int, height: Int, _ color: (Int, Int) -> (UInt8, UInt8, UInt8)) -> RGBImage {
    var pixels: [UInt8] = []
    pixels.reserveCapacity(width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let (r, g, b) = color(x, y)
            pixels += [r, g, b]
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

@Suite struct KeyedRandomTests {
    @Test func matchesPublishedSplitMix64Values() {
        // SplitMix64 seeded with 1234567: the reference sequence of Vigna's splitmix64.c.
        var random = KeyedRandom(key: 1_234_567)
        #expect(random.next() == 6_457_827_717_110_365_317)
        #expect(random.next() == 3_203_168_211_198_807_973)
        #expect(random.next() == 9_817_491_932_198_370_423)
        #expect(random.value(at: 1) == 6_457_827_717_110_365_317, "values are addressable by position")
    }

    @Test func keyDerivationIsAsDocumented() {
        // Computed independently (Python) from the formula in KeyedRandom's documentation.
        #expect(KeyedRandom.key([2, 42, 3, 7]) == 4_159_740_540_201_644_148)
        var random = KeyedRandom(.augmentation, seed: 42, 3, 7)
        #expect(random.next() == 7_162_736_462_989_273_717)
        #expect(random.next() == 4_040_492_598_061_190_807)
    }

    @Test func boundedValuesStayInRangeAndCoverIt() {
        var random = KeyedRandom(key: 99)
        var seen = Set<Int>()
        for _ in 0..<2000 {
            let value = random.below(7)
            #expect((0..<7).contains(value))
            seen.insert(value)
        }
        #expect(seen.count == 7)
        #expect(random.below(1) == 0)
        let unit = random.unitFloat()
        #expect(unit >= 0 && unit < 1)
    }
}

@Suite struct TransformTests {
    let photo = image(width: 90, height: 60) { x, y in (UInt8(x * 2), UInt8(y * 4), UInt8((x * y) % 256)) }

    @Test func outputHasShapeAndRange() {
        for mode in [ImageTransform.Mode.training, .evaluation] {
            let transform = ImageTransform(size: 32, mode: mode)
            let out = transform.apply(photo, seed: 1, epoch: 0, sampleIndex: 5)
            #expect(out.count == 3 * 32 * 32)
            #expect(out.allSatisfy { $0 >= -1 && $0 <= 1 })
        }
        let black = image(width: 40, height: 40) { _, _ in (0, 0, 0) }
        let white = image(width: 40, height: 40) { _, _ in (255, 255, 255) }
        let transform = ImageTransform(size: 16, mode: .evaluation)
        #expect(transform.apply(black, seed: 0, epoch: 0, sampleIndex: 0).allSatisfy { $0 == -1 })
        #expect(transform.apply(white, seed: 0, epoch: 0, sampleIndex: 0).allSatisfy { $0 == 1 })
    }

    @Test func cropsStayWithinTheResizedImage() {
        let transform = ImageTransform(size: 32, mode: .training)
        var xs = Set<Int>(), flips = Set<Bool>()
        for index in 0..<500 {
            let place = transform.placement(width: 90, height: 60, seed: 7, epoch: 2, sampleIndex: index)
            #expect(place.resizedWidth == 48 && place.resizedHeight == 32)
            #expect(place.cropY == 0 && place.cropX >= 0 && place.cropX + 32 <= 48)
            xs.insert(place.cropX)
            flips.insert(place.flip)
        }
        #expect(xs.count == 17, "every crop offset 0...16 occurs")
        #expect(flips.count == 2)
    }

    @Test func sameKeySameAugmentationOtherKeysDiffer() {
        let transform = ImageTransform(size: 24, mode: .training)
        let a = transform.apply(photo, seed: 3, epoch: 1, sampleIndex: 10)
        #expect(transform.apply(photo, seed: 3, epoch: 1, sampleIndex: 10) == a)
        let others = [transform.placement(width: 90, height: 60, seed: 3, epoch: 2, sampleIndex: 10),
                      transform.placement(width: 90, height: 60, seed: 4, epoch: 1, sampleIndex: 10),
                      transform.placement(width: 90, height: 60, seed: 3, epoch: 1, sampleIndex: 11)]
        let mine = transform.placement(width: 90, height: 60, seed: 3, epoch: 1, sampleIndex: 10)
        #expect(others.contains { $0 != mine })
    }

    @Test func flipMirrorsEveryRow() {
        let transform = ImageTransform(size: 32, mode: .training)
        var place = transform.placement(width: 90, height: 60, seed: 0, epoch: 0, sampleIndex: 0)
        place.flip = false
        var plain = [Float](repeating: 0, count: transform.outputCount)
        plain.withUnsafeMutableBufferPointer { transform.apply(photo, placement: place, into: $0) }
        place.flip = true
        var flipped = [Float](repeating: 0, count: transform.outputCount)
        flipped.withUnsafeMutableBufferPointer { transform.apply(photo, placement: place, into: $0) }
        for c in 0..<3 {
            for y in 0..<32 {
                for x in 0..<32 {
                    #expect(flipped[c * 1024 + y * 32 + x] == plain[c * 1024 + y * 32 + (31 - x)])
                }
            }
        }
        #expect(plain != flipped)
    }

    @Test func windowMatchesTheCropOfTheFullResize() {
        // The transform resizes only the crop window; it must agree with resizing the whole image
        // (rounded to 8 bits), then cropping and flipping.
        let portrait = image(width: 60, height: 90) { x, y in (UInt8((x * y) % 256), UInt8(x * 4), UInt8(y * 2)) }
        let transform = ImageTransform(size: 24, mode: .training)
        var worst: Float = 0
        var flips = Set<Bool>()
        for source in [photo, portrait] {
            for index in 0..<8 {
                let place = transform.placement(width: source.width, height: source.height, seed: 5, epoch: 0, sampleIndex: index)
                flips.insert(place.flip)
                let full = resize(source, width: place.resizedWidth, height: place.resizedHeight)
                var out = [Float](repeating: 0, count: transform.outputCount)
                out.withUnsafeMutableBufferPointer { transform.apply(source, placement: place, into: $0) }
                for y in 0..<24 {
                    for x in 0..<24 {
                        let pixel = full[place.cropX + (place.flip ? 23 - x : x), place.cropY + y]
                        for (c, level) in [pixel.0, pixel.1, pixel.2].enumerated() {
                            worst = max(worst, abs((out[c * 576 + y * 24 + x] + 1) * 127.5 - Float(level)))
                        }
                    }
                }
            }
        }
        #expect(flips.count == 2)
        #expect(worst <= 0.501, "worst difference \(worst) levels, only the rounding of resize")
    }

    @Test func evaluationTakesTheCentre() {
        #expect(ImageTransform.centredOffset(16) == 8)
        #expect(ImageTransform.centredOffset(3) == 2, "round(1.5) = 2")
        #expect(ImageTransform.centredOffset(5) == 2, "round(2.5) = 2, half to even as Python")
        let place = ImageTransform(size: 32, mode: .evaluation).placement(width: 90, height: 60, seed: 9, epoch: 9, sampleIndex: 9)
        #expect(place == ImageTransform.Placement(resizedWidth: 48, resizedHeight: 32, cropX: 8, cropY: 0, flip: false))
    }

    @Test func constantImageStaysConstant() {
        let flat = image(width: 77, height: 53) { _, _ in (200, 10, 99) }
        let small = resize(flat, width: 20, height: 13)
        #expect(small.pixels == [UInt8]([200, 10, 99]).repeated(20 * 13))
        let large = resize(flat, width: 150, height: 100)
        #expect(large.pixels == [UInt8]([200, 10, 99]).repeated(150 * 100))
        let out = ImageTransform(size: 16, mode: .training).apply(flat, seed: 1, epoch: 1, sampleIndex: 1)
        #expect(out[0..<256].allSatisfy { abs($0 - (200 / 127.5 - 1)) < 1e-5 })
        #expect(out[256..<512].allSatisfy { abs($0 - (10 / 127.5 - 1)) < 1e-5 })
    }

    @Test func downscaledCheckerboardAverages() {
        let board = image(width: 64, height: 64) { x, y in (x + y) % 2 == 0 ? (255, 255, 255) : (0, 0, 0) }
        for side in [16, 21, 8] {
            let small = resize(board, width: side, height: side)
            let worst = small.pixels.map { abs(Int($0) - 128) }.max()!
            #expect(worst <= 12, "side \(side): a checkerboard averages to grey, worst deviation \(worst)")
        }
        // Without antialiasing a point sample would pick pure black or white; the interior is exact.
        let quarter = resize(board, width: 16, height: 16)
        #expect(quarter[8, 8].0 >= 126 && quarter[8, 8].0 <= 129)
    }

    @Test func upscalingInterpolatesLinearly() {
        let two = image(width: 2, height: 1) { x, _ in x == 0 ? (0, 0, 0) : (200, 200, 200) }
        let four = resize(two, width: 4, height: 1)
        // Output centres 0.25, 0.75, 1.25, 1.75 in input units; input centres 0.5 and 1.5.
        #expect(four.pixels.enumerated().filter { $0.offset % 3 == 0 }.map(\.element) == [0, 50, 150, 200])
    }

    @Test func shorterSideSizes() {
        #expect(sizeWithShorterSide(width: 500, height: 375, shorterSide: 64) == (85, 64))
        #expect(sizeWithShorterSide(width: 375, height: 500, shorterSide: 256) == (256, 341))
        #expect(sizeWithShorterSide(width: 64, height: 64, shorterSide: 32) == (32, 32))
    }
}

private extension Array {
    func repeated(_ times: Int) -> [Element] {
        (0..<times).flatMap { _ in self }
    }
}
