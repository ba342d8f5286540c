// Named tensors in and out of the flat parameter buffer (docs/model.md, "Checkpoint tensor names"): loading
// checks every required tensor and shape; unknown names (the authors' `el1.*`, `GAT.*`, `w`, ...)
// are returned for the caller to warn about, not treated as errors.
//
// Shape legend: N = floats in the layout; tensors use the PyTorch shapes of ParameterLayout.

/// A tensor by value: its shape and its float32 values in row-major order.
public struct TensorValues: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// Why a set of named tensors does not fit a parameter layout.
public enum ParameterLoadingError: Error, Equatable, CustomStringConvertible {
    /// A tensor the model needs is absent (the first in layout order).
    case missingTensor(name: String)
    /// A tensor has the wrong shape (the first in layout order).
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// A tensor's values do not fill its declared shape.
    case valueCountMismatch(name: String, shape: [Int], valueCount: Int)

    public var description: String {
        switch self {
        case .missingTensor(let name):
            return "required tensor '\(name)' is missing"
        case .shapeMismatch(let name, let expected, let found):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        case .valueCountMismatch(let name, let shape, let valueCount):
            return "tensor '\(name)' declares shape \(shape) but holds \(valueCount) values"
        }
    }
}

/// Copies `tensors` into `params` at the offsets of `layout` and returns the names the layout does
/// not know, sorted. Nothing is written unless every required tensor is present and well shaped.
///
/// Tensor `prefix + name` fills layout entry `name` (prefix "m." reads Adam's first moment from an
/// optimizer file). A scalar (shape []) is accepted for a tensor of shape [1], such as `c`.
@discardableResult
public func loadParameters(_ tensors: [String: TensorValues], into params: UnsafeMutableBufferPointer<Float>,
                           layout: ParameterLayout, prefix: String = "") throws(ParameterLoadingError) -> [String] {
    precondition(params.count >= layout.totalCount,
                 "loadParameters: buffer of \(params.count) floats, layout needs \(layout.totalCount)")
    for entry in layout.entries {
        guard let tensor = tensors[prefix + entry.name] else { throw .missingTensor(name: prefix + entry.name) }
        let sameShape = tensor.shape == entry.shape || (tensor.shape.isEmpty && entry.shape == [1])
        guard sameShape else {
            throw .shapeMismatch(name: prefix + entry.name, expected: entry.shape, found: tensor.shape)
        }
        guard tensor.values.count == entry.count else {
            throw .valueCountMismatch(name: prefix + entry.name, shape: tensor.shape, valueCount: tensor.values.count)
        }
    }
    for entry in layout.entries {
        let destination = UnsafeMutableBufferPointer(rebasing: params[entry.range])
        _ = destination.update(fromContentsOf: tensors[prefix + entry.name]!.values)
    }
    let known = Set(layout.entries.map { prefix + $0.name })
    return tensors.keys.filter { !known.contains($0) }.sorted()
}

/// The tensors of `params` in layout order, each named `prefix + name` (e.g. "m." for Adam's first
/// moment, docs/decisions.md), with its layout shape.
public func exportParameters(_ params: UnsafeBufferPointer<Float>, layout: ParameterLayout,
                             prefix: String = "") -> [(name: String, tensor: TensorValues)] {
    precondition(params.count >= layout.totalCount,
                 "exportParameters: buffer of \(params.count) floats, layout needs \(layout.totalCount)")
    return layout.entries.map { entry in
        (prefix + entry.name, TensorValues(shape: entry.shape, values: Array(params[entry.range])))
    }
}
