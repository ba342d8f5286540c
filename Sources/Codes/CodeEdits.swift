/// The image-level tools built on `CodePaths` and `Traversal`: encode the images, edit their
/// codes, decode the results (CHW floats in [-1, 1], in grid order).
public enum CodeEdits {
    /// The dense codes [P, K] of each image file, encoded together (one batch when they fit).
    public static func codes(of paths: [String], with model: CodeModel) throws -> [[Float]] {
        var out: [[Float]] = []
        try ImageInputs(paths: paths).encode(with: model) { range, dense in
            for i in 0..<range.count { out.append(Array(dense[(i * model.codeFloats)..<((i + 1) * model.codeFloats)])) }
        }
        return out
    }

    /// `steps` images from A's codes to B's (`scvae interpolate`); the ends are their reconstructions.
    public static func interpolate(_ a: String, _ b: String, steps: Int, slerp: Bool, with model: CodeModel) throws -> [[Float]] {
        let ends = try codes(of: [a, b], with: model)
        return decode(CodePaths.between(ends[0], ends[1], steps: steps, slerp: slerp), with: model)
    }

    /// What `scvae traverse` picks and draws.
    public struct TraversalGrid {
        public var atoms: [Int]
        public var values: [Float]
        /// Row by row: one row per atom, one image per value.
        public var images: [[Float]]
    }

    /// Traverses the atoms (or the image's `top` most used ones) over `range` (default: plus and
    /// minus the image's largest code magnitude), at `position` (y, x) or everywhere.
    public static func traverse(_ path: String, atoms requested: [Int]?, top: Int?, range: ClosedRange<Float>?,
                                position: (y: Int, x: Int)?, steps: Int, with model: CodeModel) throws -> TraversalGrid {
        let config = model.config, side = config.latentSize
        for atom in requested ?? [] where atom < 0 || atom >= config.atoms {
            throw CodesError.invalidArgument("atom \(atom) is not one of the \(config.atoms) atoms of \(config.name) (0...\(config.atoms - 1))")
        }
        if let position, !(0..<side).contains(position.y) || !(0..<side).contains(position.x) {
            throw CodesError.invalidArgument("position \(position.y),\(position.x) is off the \(side)x\(side) latent grid of \(config.name)")
        }
        let base = try codes(of: [path], with: model)[0]
        let atoms = requested ?? Traversal.mostUsedAtoms(base, atoms: config.atoms, count: min(top ?? 4, config.atoms))
        let reach = max(maxMagnitude(base), 1e-3)
        let span = range ?? -reach...reach
        let traversal = Traversal(atoms: atoms, values: Traversal.values(from: span.lowerBound, to: span.upperBound, steps: steps),
                                  position: position.map { $0.y * side + $0.x })
        return TraversalGrid(atoms: atoms, values: traversal.values,
                             images: decode(traversal.grid(from: base, atomCount: config.atoms), with: model))
    }

    static func maxMagnitude(_ values: [Float]) -> Float { values.reduce(0) { max($0, abs($1)) } }

    /// Decodes whole-image codes, in order.
    public static func decode(_ codes: [[Float]], with model: CodeModel) -> [[Float]] {
        let images = model.decode(codes.flatMap { $0 })
        return (0..<codes.count).map { Array(images[($0 * model.imageFloats)..<(($0 + 1) * model.imageFloats)]) }
    }
}
