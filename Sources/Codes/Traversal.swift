/// The paper's attribute manipulation (`scvae traverse`): one code component set to a range of
/// values, at every latent position or at one.
public struct Traversal: Sendable {
    public var atoms: [Int]
    public var values: [Float]
    /// A position index (y * s + x), or nil for every position.
    public var position: Int?

    public init(atoms: [Int], values: [Float], position: Int?) {
        self.atoms = atoms
        self.values = values
        self.position = position
    }

    /// `steps` evenly spaced values from `low` to `high`, both included.
    public static func values(from low: Float, to high: Float, steps: Int) -> [Float] {
        precondition(steps >= 2)
        return (0..<steps).map { low + (high - low) * Float($0) / Float(steps - 1) }
    }

    /// The `count` atoms used at the most positions of `codes` ([P, K]); ties go to the larger sum
    /// of magnitudes, then to the lower atom.
    public static func mostUsedAtoms(_ codes: [Float], atoms: Int, count: Int) -> [Int] {
        var uses = [Int](repeating: 0, count: atoms), weight = [Float](repeating: 0, count: atoms)
        for (i, value) in codes.enumerated() where value != 0 {
            uses[i % atoms] += 1
            weight[i % atoms] += abs(value)
        }
        let ranked = (0..<atoms).sorted { (uses[$0], weight[$0], -$0) > (uses[$1], weight[$1], -$1) }
        return Array(ranked.prefix(count))
    }

    /// The codes of the grid, row by row (one row per atom, one column per value): copies of
    /// `codes` ([P, K]) with the atom's component replaced by the value.
    public func grid(from codes: [Float], atomCount: Int) -> [[Float]] {
        let positions = codes.count / atomCount
        var out: [[Float]] = []
        for atom in atoms {
            precondition(atom >= 0 && atom < atomCount)
            for value in values {
                var edited = codes
                let targets = position.map { [$0] } ?? Array(0..<positions)
                for p in targets { edited[p * atomCount + atom] = value }
                out.append(edited)
            }
        }
        return out
    }
}
