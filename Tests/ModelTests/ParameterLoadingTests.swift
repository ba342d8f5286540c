import Testing
@testable import Model

@Suite struct ParameterLoadingTests {
    static let layout = ParameterLayout(config: .tiny)

    /// Every tensor of the tiny layout, filled with its offset + index so misplacement shows.
    static func namedTensors() -> [String: TensorValues] {
        var tensors: [String: TensorValues] = [:]
        for entry in layout.entries {
            tensors[entry.name] = TensorValues(shape: entry.shape, values: entry.range.map { Float($0 % 1000) })
        }
        return tensors
    }

    static func load(_ tensors: [String: TensorValues], prefix: String = "") throws(ParameterLoadingError) -> (params: [Float], unknown: [String]) {
        var params = [Float](repeating: -1, count: layout.totalCount)
        var unknown: [String] = []
        var failure: ParameterLoadingError?
        params.withUnsafeMutableBufferPointer { buffer in
            do throws(ParameterLoadingError) {
                unknown = try loadParameters(tensors, into: buffer, layout: layout, prefix: prefix)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return (params, unknown)
    }

    @Test func exportThenLoadRoundTripsAndReportsUnknownNames() throws {
        var tensors = Self.namedTensors()
        tensors["w"] = TensorValues(shape: [1], values: [3])
        tensors["el1.weight"] = TensorValues(shape: [2, 2], values: [1, 2, 3, 4])
        let (params, unknown) = try Self.load(tensors)
        #expect(unknown == ["el1.weight", "w"])
        #expect(params == (0..<Self.layout.totalCount).map { Float($0 % 1000) })

        let exported = params.withUnsafeBufferPointer { exportParameters($0, layout: Self.layout, prefix: "m.") }
        #expect(exported.map(\.name) == Self.layout.entries.map { "m." + $0.name })
        let byName = Dictionary(uniqueKeysWithValues: exported.map { ($0.name, $0.tensor) })
        let reloaded = try Self.load(byName, prefix: "m.")
        #expect(reloaded.params == params && reloaded.unknown.isEmpty)
    }

    @Test func aMissingTensorIsNamed() {
        var tensors = Self.namedTensors()
        tensors["c"] = nil
        tensors["decoder.conv_out.bias"] = nil
        // The first missing one in layout order: `c` comes before the decoder.
        #expect(throws: ParameterLoadingError.missingTensor(name: "c")) { try Self.load(tensors) }
    }

    @Test func aWrongShapeIsNamedWithBothShapes() {
        var tensors = Self.namedTensors()
        tensors["Dict"] = TensorValues(shape: [128, 64], values: [Float](repeating: 0, count: 64 * 128))
        #expect(throws: ParameterLoadingError.shapeMismatch(name: "Dict", expected: [64, 128], found: [128, 64])) {
            try Self.load(tensors)
        }
        let message = ParameterLoadingError.shapeMismatch(name: "Dict", expected: [64, 128], found: [128, 64]).description
        #expect(message.contains("Dict") && message.contains("[64, 128]") && message.contains("[128, 64]"))
    }

    @Test func valuesMustFillTheShape() {
        var tensors = Self.namedTensors()
        tensors["encoder.conv_in.bias"] = TensorValues(shape: [32], values: [1, 2])
        #expect(throws: ParameterLoadingError.valueCountMismatch(name: "encoder.conv_in.bias", shape: [32], valueCount: 2)) {
            try Self.load(tensors)
        }
    }

    @Test func aScalarCIsAccepted() throws {
        var tensors = Self.namedTensors()
        tensors["c"] = TensorValues(shape: [], values: [2.5])
        let (params, _) = try Self.load(tensors)
        #expect(params[Self.layout.entry("c").offset] == 2.5)
    }
}
