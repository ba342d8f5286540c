import Foundation

/// A line chart as inline SVG: one or more series over a shared x axis (steps), axes with round
/// ticks, a legend. A pure value: the same series give the same text.
public struct LineChart: Sendable, Equatable {
    public struct Series: Sendable, Equatable {
        public var name: String
        public var color: String
        public var points: [Point]

        public init(name: String, color: String, points: [Point]) {
            self.name = name
            self.color = color
            self.points = points
        }
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double

        public init(_ x: Double, _ y: Double) {
            self.x = x
            self.y = y
        }
    }

    public var title: String
    public var xLabel: String
    public var series: [Series]
    public var width = 640.0
    public var height = 260.0

    static let margin = (left: 64.0, right: 16.0, top: 28.0, bottom: 40.0)

    public init(title: String, xLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.series = series.map { s in
            Series(name: s.name, color: s.color, points: s.points.filter { $0.x.isFinite && $0.y.isFinite })
        }
    }

    /// The range the axis shows: the data's, widened to round ticks; a single value gets room around it.
    static func axisRange(_ values: [Double]) -> (low: Double, high: Double, ticks: [Double]) {
        guard var low = values.min(), var high = values.max() else { return (0, 1, [0, 0.5, 1]) }
        if high - low < 1e-12 * max(1, abs(high)) {
            let pad = max(abs(high) * 0.05, 1e-6)
            low -= pad
            high += pad
        }
        let rough = (high - low) / 4
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        let first = floor(low / step) * step
        let last = ceil(high / step) * step
        let ticks = stride(from: first, through: last + step / 2, by: step).map { $0 }
        return (first, last, ticks)
    }

    static func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 1e5 || abs(value) < 1e-3 { return String(format: "%.1e", value) }
        return String(format: "%g", (value * 1e6).rounded() / 1e6)
    }

    public var svg: String {
        let all = series.flatMap(\.points)
        let m = Self.margin
        let plotWidth = width - m.left - m.right, plotHeight = height - m.top - m.bottom
        let xs = Self.axisRange(all.map(\.x)), ys = Self.axisRange(all.map(\.y))
        func px(_ x: Double) -> Double { m.left + (x - xs.low) / (xs.high - xs.low) * plotWidth }
        func py(_ y: Double) -> Double { m.top + plotHeight - (y - ys.low) / (ys.high - ys.low) * plotHeight }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" height=\"\(f(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        out += "<text x=\"\(f(m.left))\" y=\"18\" class=\"title\">\(HTML.escape(title))</text>"
        for tick in ys.ticks {
            out += "<line x1=\"\(f(m.left))\" x2=\"\(f(width - m.right))\" y1=\"\(f(py(tick)))\" y2=\"\(f(py(tick)))\" class=\"grid\"/>"
            out += "<text x=\"\(f(m.left - 6))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\" class=\"tick\">\(Self.label(tick))</text>"
        }
        for tick in xs.ticks {
            out += "<text x=\"\(f(px(tick)))\" y=\"\(f(height - m.bottom + 16))\" text-anchor=\"middle\" class=\"tick\">\(Self.label(tick))</text>"
        }
        out += "<line x1=\"\(f(m.left))\" x2=\"\(f(width - m.right))\" y1=\"\(f(m.top + plotHeight))\" y2=\"\(f(m.top + plotHeight))\" class=\"axis\"/>"
        out += "<line x1=\"\(f(m.left))\" x2=\"\(f(m.left))\" y1=\"\(f(m.top))\" y2=\"\(f(m.top + plotHeight))\" class=\"axis\"/>"
        out += "<text x=\"\(f(m.left + plotWidth / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\" class=\"tick\">\(HTML.escape(xLabel))</text>"
        for s in series where !s.points.isEmpty {
            let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(HTML.escape(s.color))\" stroke-width=\"1.6\" data-series=\"\(HTML.escape(s.name))\"/>"
        }
        for (i, s) in series.enumerated() {
            let x = m.left + 12 + Double(i) * 130
            out += "<rect x=\"\(f(x))\" y=\"\(f(m.top + 4))\" width=\"10\" height=\"10\" fill=\"\(HTML.escape(s.color))\"/>"
            out += "<text x=\"\(f(x + 14))\" y=\"\(f(m.top + 13))\" class=\"tick\">\(HTML.escape(s.name))</text>"
        }
        return out + "</svg>"
    }
}

enum HTML {
    /// Text safe inside HTML elements and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
