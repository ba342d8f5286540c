/// Codes stored by their nonzero entries, row by row (compressed sparse rows).
///
/// Row r (one latent position of one image) holds the atoms `indices[offsets[r]..<offsets[r+1]]`
/// (ascending) with the values `values[offsets[r]..<offsets[r+1]]`; every other atom of the row
/// is exactly zero. LISTA's soft threshold leaves most codes exactly zero, so this keeps only what
/// the codes carry, bit for bit.
public struct SparseCodes: Equatable, Sendable {
    /// K, the width of a dense row.
    public let atoms: Int
    public private(set) var offsets: [Int]
    public private(set) var indices: [UInt16]
    public private(set) var values: [Float]

    public init(atoms: Int) {
        precondition(atoms >= 1 && atoms <= Int(UInt16.max) + 1, "SparseCodes: \(atoms) atoms do not fit 16-bit indices")
        self.atoms = atoms
        offsets = [0]
        indices = []
        values = []
    }

    /// Validated parts, as a codes file holds them; throws when they do not describe rows of
    /// `atoms` entries, with ascending atoms below `atoms`.
    init(atoms: Int, offsets: [Int], indices: [UInt16], values: [Float]) throws(SparseCodesError) {
        guard atoms >= 1 && atoms <= Int(UInt16.max) + 1 else { throw .init("\(atoms) atoms") }
        guard offsets.first == 0, offsets.last == indices.count, indices.count == values.count else {
            throw .init("offsets run from \(offsets.first ?? -1) to \(offsets.last ?? -1) over \(indices.count) indices and \(values.count) values")
        }
        for r in 0..<(offsets.count - 1) {
            guard offsets[r] <= offsets[r + 1] else { throw .init("offsets decrease at row \(r)") }
            var previous = -1
            for i in offsets[r]..<offsets[r + 1] {
                let atom = Int(indices[i])
                guard atom > previous && atom < atoms else {
                    throw .init("row \(r): atom \(atom) out of order or not below \(atoms)")
                }
                previous = atom
            }
        }
        self.atoms = atoms
        self.offsets = offsets
        self.indices = indices
        self.values = values
    }

    public var rowCount: Int { offsets.count - 1 }
    public var nonzeroCount: Int { values.count }

    /// Appends dense rows (a multiple of `atoms` floats).
    public mutating func append(dense rows: some Collection<Float>) {
        precondition(rows.count % atoms == 0, "SparseCodes.append: \(rows.count) floats are not whole rows of \(atoms)")
        var atom = 0
        for value in rows {
            if value != 0 {
                indices.append(UInt16(atom))
                values.append(value)
            }
            atom += 1
            if atom == atoms {
                offsets.append(values.count)
                atom = 0
            }
        }
    }

    /// Rows `range` as dense floats ([range.count, K]).
    public func dense(rows range: Range<Int>) -> [Float] {
        var out = [Float](repeating: 0, count: range.count * atoms)
        out.withUnsafeMutableBufferPointer { dense(rows: range, into: $0.baseAddress!) }
        return out
    }

    /// Writes rows `range` as dense floats to `out` ([range.count, K]).
    public func dense(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount)
        out.initialize(repeating: 0, count: range.count * atoms)
        for (i, r) in range.enumerated() {
            for e in offsets[r]..<offsets[r + 1] { out[i * atoms + Int(indices[e])] = values[e] }
        }
    }

    /// The nonzero entries of row `r`.
    public func row(_ r: Int) -> (indices: ArraySlice<UInt16>, values: ArraySlice<Float>) {
        let range = offsets[r]..<offsets[r + 1]
        return (indices[range], values[range])
    }
}

/// Why stored parts do not make valid sparse codes.
struct SparseCodesError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}
