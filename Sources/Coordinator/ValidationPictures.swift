import Foundation
import Images
import TensorFiles

/// The pictures a completed validation leaves for people in `DIR/samples/`: rank 0's
/// reconstruction grid (`step-NNNNNNNN.png`, originals above reconstructions) and a bar chart of
/// how often each dictionary atom is active over the set (`atoms-step-NNNNNNNN.png`).
enum ValidationPictures {
    static func gridPath(step: Int, in directory: String) -> String {
        (directory as NSString).appendingPathComponent("samples/step-\(paddedStep(step)).png")
    }

    static func atomsPath(step: Int, in directory: String) -> String {
        (directory as NSString).appendingPathComponent("samples/atoms-step-\(paddedStep(step)).png")
    }

    static func paddedStep(_ step: Int) -> String {
        let digits = String(step)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Width and height of a PNG, from its header (nil if it is not one).
    static func pngSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 24, bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) else { return nil }
        let be = { (at: Int) in bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }

    /// Bars of `usage` (one per atom, in atom order), each as high as its share of the most used
    /// atom's count, on white; a grey base line. Empty usage gives a blank strip.
    static func atomUsage(_ usage: [UInt64]) -> RGBImage {
        let barWidth = max(1, 1024 / max(usage.count, 1)), gap = usage.count <= 256 ? 1 : 0
        let margin = 8, plotHeight = 160
        let width = max(usage.count * (barWidth + gap) + 2 * margin, 64), height = plotHeight + 2 * margin + 1
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        func paint(_ x: Int, _ y: Int, _ rgb: (UInt8, UInt8, UInt8)) {
            let i = (y * width + x) * 3
            pixels[i] = rgb.0
            pixels[i + 1] = rgb.1
            pixels[i + 2] = rgb.2
        }
        let most = max(usage.max() ?? 0, 1)
        for (atom, count) in usage.enumerated() {
            let bar = Int((Double(count) / Double(most) * Double(plotHeight)).rounded())
            let left = margin + atom * (barWidth + gap)
            for x in left..<(left + barWidth) {
                for y in (margin + plotHeight - bar)..<(margin + plotHeight) { paint(x, y, (46, 109, 180)) }
            }
        }
        for x in 0..<width { paint(x, margin + plotHeight, (150, 150, 150)) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Writes the grid (when rank 0 sent one) and the atom-usage chart; returns the chart's PNG
    /// bytes beside the paths written.
    static func write(_ result: ValidationResult, into directory: String) throws -> (paths: [String], atomsPNG: [UInt8]) {
        var paths: [String] = []
        if !result.gridPNG.isEmpty {
            let path = gridPath(step: result.step, in: directory)
            try FileSystem.makeDirectories((path as NSString).deletingLastPathComponent)
            try BinaryFile.writeAtomically(result.gridPNG, to: path)
            paths.append(path)
        }
        let atoms = try encodePNG(atomUsage(result.atomUsage))
        let path = atomsPath(step: result.step, in: directory)
        try FileSystem.makeDirectories((path as NSString).deletingLastPathComponent)
        try BinaryFile.writeAtomically(atoms, to: path)
        paths.append(path)
        return (paths, atoms)
    }
}
