import Foundation
import Testing
@testable import Images

@Suite struct ImageQualityTests {
    @Test func psnrOfAKnownError() {
        let a = [Float](repeating: 0.5, count: 300)
        let b = a.map { $0 + 0.1 }
        // MSE = 0.01 -> 20 dB.
        #expect(abs(ImageQuality.psnr(a, b) - 20) < 1e-5)
        #expect(ImageQuality.psnr(a, a) == .infinity)
    }

    @Test func ssimOfIdenticalImagesIsOne() {
        let image: [Float] = (0..<(3 * 16 * 20)).map { (i: Int) -> Float in Float((i * 37) % 101) / 100 }
        #expect(abs(ImageQuality.ssim(image, image, channels: 3, height: 16, width: 20) - 1) < 1e-12)
    }

    @Test func ssimOfConstantImagesIsTheLuminanceTerm() {
        // Zero variances leave only (2 ma mb + C1) / (ma^2 + mb^2 + C1).
        let a = [Float](repeating: 0.25, count: 12 * 12), b = [Float](repeating: 0.75, count: 12 * 12)
        let c1 = 0.0001
        let expected = (2 * 0.25 * 0.75 + c1) / (0.25 * 0.25 + 0.75 * 0.75 + c1)
        #expect(abs(ImageQuality.ssim(a, b, channels: 1, height: 12, width: 12) - expected) < 1e-6)
    }

    @Test func ssimFallsAsNoiseGrows() {
        var state: UInt64 = 99
        func noise() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
        let clean: [Float] = (0..<(32 * 32)).map { (i: Int) -> Float in
            let x = Double(i % 32) / 4, y = Double(i / 32) / 5
            return Float(0.5 + 0.4 * sin(x) * cos(y))
        }
        let slightly = clean.map { $0 + 0.02 * noise() }
        let heavily = clean.map { $0 + 0.3 * noise() }
        let s1 = ImageQuality.ssim(clean, slightly, channels: 1, height: 32, width: 32)
        let s2 = ImageQuality.ssim(clean, heavily, channels: 1, height: 32, width: 32)
        #expect(s1 < 1 && s1 > 0.9, "\(s1)")
        #expect(s2 < s1, "\(s2) vs \(s1)")
    }
}
