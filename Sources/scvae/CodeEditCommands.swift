import ArgumentParser
import Codes
import CommandOptions

struct InterpolateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interpolate",
        abstract: "Decode codes along the line (or great circle) from image A's codes to image B's: one strip PNG.")

    @OptionGroup var weights: WeightsOptions

    @Argument(help: "The first image (the strip's left end).")
    var a: String

    @Argument(help: "The second image (the strip's right end).")
    var b: String

    @Option(help: "Images in the strip, both ends included.")
    var steps: Int = 8

    @Flag(help: "Spherical interpolation of the flattened codes (the length goes linearly).")
    var slerp = false

    @Option(help: "The strip to write (PNG).")
    var out: String

    func validate() throws {
        guard steps >= 2 else { throw ValidationError("--steps must be at least 2.") }
    }

    func run() throws {
        let codeModel = try CodeModel(weights: weights.load())
        let images = try CodeEdits.interpolate(a, b, steps: steps, slerp: slerp, with: codeModel)
        try writePNG(ImageGrid.compose(images, side: codeModel.config.imageSize, columns: steps), to: out)
        print("\(steps) images from \(a) to \(b)\(slerp ? " (slerp)" : ""): \(out)")
    }
}

struct TraverseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traverse",
        abstract: "Move one code component (at every position, or one) through a range and decode: a grid with a row per atom.")

    @OptionGroup var weights: WeightsOptions

    @Argument(help: "The image whose codes are edited.")
    var image: String

    @Option(help: "Atoms to move, comma-separated (0-based), e.g. 3,17.")
    var atoms: String?

    @Option(help: "Move the image's K most used atoms instead of --atoms.")
    var top: Int?

    @Option(help: "Values the component takes, LOW:HIGH (write --range=-2:2); default plus and minus the image's largest code magnitude.")
    var range: String?

    @Option(help: "Only the latent position y,x (0-based); default every position.")
    var position: String?

    @Option(help: "Images per row.")
    var steps: Int = 7

    @Option(help: "The grid to write (PNG).")
    var out: String

    func validate() throws {
        guard steps >= 2 else { throw ValidationError("--steps must be at least 2.") }
        guard (atoms == nil) != (top == nil) else { throw ValidationError("Give exactly one of --atoms and --top.") }
        if let top, top < 1 { throw ValidationError("--top must be at least 1.") }
        if let atoms, parsedAtoms(atoms) == nil { throw ValidationError("--atoms takes comma-separated atom numbers, like 3,17.") }
        if let range, parsedRange(range) == nil { throw ValidationError("--range takes LOW:HIGH with LOW < HIGH, like --range=-2:2.") }
        if let position, parsedPosition(position) == nil { throw ValidationError("--position takes y,x, like 3,5.") }
    }

    func run() throws {
        let codeModel = try CodeModel(weights: weights.load())
        let grid = try CodeEdits.traverse(image, atoms: atoms.flatMap(parsedAtoms), top: top, range: range.flatMap(parsedRange),
                                          position: position.flatMap(parsedPosition), steps: steps, with: codeModel)
        try writePNG(ImageGrid.compose(grid.images, side: codeModel.config.imageSize, columns: steps), to: out)
        let values = "\(grid.values.first!)...\(grid.values.last!)"
        print("atoms \(grid.atoms.map(String.init).joined(separator: ",")) (one row each) through \(values): \(out)")
    }

    private func parsedAtoms(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.isEmpty || parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    private func parsedRange(_ text: String) -> ClosedRange<Float>? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let low = Float(parts[0]), let high = Float(parts[1]), low.isFinite, high.isFinite, low < high else { return nil }
        return low...high
    }

    private func parsedPosition(_ text: String) -> (y: Int, x: Int)? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let y = Int(parts[0]), let x = Int(parts[1]) else { return nil }
        return (y, x)
    }
}

import Foundation
