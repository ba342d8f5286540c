import Foundation

/// `scvae report DIR`: one self-contained HTML page (no script, no network: styles and SVG
/// inline) with the run's summary, its loss, sparsity and learning-rate curves, throughput over
/// time, the step-time breakdown and the events (docs/observability.md).
public enum ReportPage {
    /// A picture shown on the page, embedded as a JPEG data URI (the page stays one file).
    public struct Picture: Sendable, Equatable {
        public var caption: String
        public var jpeg: [UInt8]
        public var width: Int

        public init(caption: String, jpeg: [UInt8], width: Int) {
            self.caption = caption
            self.jpeg = jpeg
            self.width = width
        }
    }

    public static func render(_ run: RunRecord, picture: Picture? = nil, pictureNote: String? = nil, generated: Date = Date()) -> String {
        let steps = run.steps
        func series(_ name: String, _ color: String, _ value: (RunRecord.Step) -> Double?) -> LineChart.Series {
            LineChart.Series(name: name, color: color, points: steps.compactMap { s in value(s).map { LineChart.Point(Double(s.step), $0) } })
        }
        let charts = [
            LineChart(title: "Training loss", xLabel: "step", series: [
                series("loss", "#1f77b4", \.loss), series("recon", "#2ca02c", \.recon), series("latent", "#d62728", \.latent),
            ]),
            LineChart(title: "Code sparsity (fraction of zero coefficients)", xLabel: "step", series: [series("sparsity", "#9467bd", \.sparsity)]),
            LineChart(title: "Throughput (images/s)", xLabel: "step", series: [series("images/s", "#ff7f0e", \.images_per_s)]),
            LineChart(title: "Step time (s)", xLabel: "step", series: [
                series("step", "#1f77b4", \.step_s), series("compute", "#2ca02c", \.compute_s),
                series("all-reduce", "#d62728", \.allreduce_s), series("data", "#7f7f7f", \.data_s),
            ]),
            LineChart(title: "Learning rate", xLabel: "step", series: [series("lr", "#8c564b", \.lr)]),
        ]
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>scvae run report: \(HTML.escape(run.folder))</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1360px; }
            h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
            table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
            .charts { display: flex; flex-wrap: wrap; gap: 12px; }
            svg { background: #fff; border: 1px solid #ddd; }
            svg .title { font-size: 13px; font-weight: 600; } svg .tick { font-size: 11px; fill: #555; }
            svg .grid { stroke: #eee; } svg .axis { stroke: #888; }
            .note { color: #666; }
            </style></head><body>
            <h1>scvae run report</h1>
            <p class="note">\(HTML.escape(run.folder)) &middot; generated \(HTML.escape(ISO8601DateFormatter().string(from: generated)))</p>

            """
        html += "<h2>Summary</h2>"
        if run.summary.isEmpty {
            html += "<p class=\"note\">No final/summary.json: the run has not ended (or ended with an error).</p>"
        } else {
            html += "<table>" + run.summary.map { "<tr><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined() + "</table>"
        }
        html += "<h2>Reconstructions</h2>"
        if let picture {
            // Shown at twice its size, without smoothing: the tiles are small.
            html += "<figure><img alt=\"originals above their reconstructions\" width=\"\(2 * picture.width)\" style=\"image-rendering: pixelated\" "
            html += "src=\"data:image/jpeg;base64,\(Data(picture.jpeg).base64EncodedString())\">"
            html += "<figcaption class=\"note\">\(HTML.escape(picture.caption))</figcaption></figure>"
        } else {
            html += "<p class=\"note\">\(HTML.escape(pictureNote ?? "No reconstructions."))</p>"
        }
        html += validationSection(run)
        html += "<h2>Curves</h2>"
        if steps.isEmpty {
            html += "<p class=\"note\">No step metrics (metrics.jsonl) in this folder.</p>"
        } else {
            let last = steps[steps.count - 1]
            html += "<p class=\"note\">\(steps.count) steps, from \(steps[0].step) to \(last.step)"
            if let elapsed = last.elapsed_s { html += String(format: ", %.0f s of training", elapsed) }
            html += ".</p><div class=\"charts\">" + charts.map(\.svg).joined(separator: "\n") + "</div>"
            html += stepTimeTable(steps)
        }
        html += "<h2>Events</h2>"
        if run.events.isEmpty {
            html += "<p class=\"note\">No events (events.jsonl).</p>"
        } else {
            let formatter = ISO8601DateFormatter()
            html += "<table><tr><th>time (UTC)</th><th>event</th><th>details</th></tr>"
            for event in run.events {
                let time = event.time.map { formatter.string(from: Date(timeIntervalSince1970: $0)) } ?? ""
                let details = event.details.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
                html += "<tr><td>\(HTML.escape(time))</td><td>\(HTML.escape(event.name))</td><td>\(HTML.escape(details))</td></tr>"
            }
            html += "</table>"
        }
        if run.unreadableLines > 0 {
            html += "<p class=\"note\">\(run.unreadableLines) line(s) of the metrics or events did not parse and are left out.</p>"
        }
        return html + "\n</body></html>\n"
    }

    /// The validation curves against the training loss, the best checkpoint and the newest grid.
    static func validationSection(_ run: RunRecord) -> String {
        var html = "<h2>Validation</h2>"
        guard !run.validations.isEmpty else {
            return html + "<p class=\"note\">No validation in this run (--val-data, or the built-in sample data's held-out set).</p>"
        }
        let validations = run.validations
        func points(_ value: (RunRecord.Validation) -> Double?) -> [LineChart.Point] {
            validations.compactMap { v in value(v).map { LineChart.Point(Double(v.step), $0) } }
        }
        let training = run.steps.compactMap { s in s.loss.map { LineChart.Point(Double(s.step), $0) } }
        let charts = [
            LineChart(title: "Loss: training and validation", xLabel: "step", series: [
                LineChart.Series(name: "training", color: "#1f77b4", points: training),
                LineChart.Series(name: "validation", color: "#d62728", points: points(\.loss)),
            ]),
            LineChart(title: "Validation PSNR (dB)", xLabel: "step", series: [LineChart.Series(name: "PSNR", color: "#2ca02c", points: points(\.psnr))]),
            LineChart(title: "Validation SSIM", xLabel: "step", series: [LineChart.Series(name: "SSIM", color: "#9467bd", points: points(\.ssim))]),
        ]
        let last = validations[validations.count - 1]
        html += "<p class=\"note\">\(validations.count) validation(s) of \(last.images.map(String.init) ?? "?") images; the last after step \(last.step)"
        html += String(format: ": loss %.4f, PSNR %.2f dB, SSIM %.4f.", last.loss ?? .nan, last.psnr ?? .nan, last.ssim ?? .nan) + "</p>"
        html += "<div class=\"charts\">" + charts.map(\.svg).joined(separator: "\n") + "</div>"
        if run.best.isEmpty {
            html += "<p class=\"note\">No best/ checkpoint.</p>"
        } else {
            html += "<h2>Best checkpoint (best/)</h2><table>" + run.best.map { "<tr><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined() + "</table>"
        }
        if let grid = run.latestGrid {
            html += "<figure><img alt=\"validation images above their reconstructions\" style=\"image-rendering: pixelated; max-width: 100%\" "
            html += "src=\"data:image/png;base64,\(Data(grid.png).base64EncodedString())\">"
            html += "<figcaption class=\"note\">The validation after step \(grid.step): the first validation images above their reconstructions (samples/step-\(String(format: "%08d", grid.step)).png).</figcaption></figure>"
        }
        return html
    }

    /// Mean time of each part of a step over the run's steps.
    static func stepTimeTable(_ steps: [RunRecord.Step]) -> String {
        func mean(_ value: (RunRecord.Step) -> Double?) -> String {
            let values = steps.compactMap(value).filter(\.isFinite)
            guard !values.isEmpty else { return "&ndash;" }
            return String(format: "%.3f s", values.reduce(0, +) / Double(values.count))
        }
        let rows = [("step", mean(\.step_s)), ("data wait", mean(\.data_s)), ("compute (forward, backward, optimizer)", mean(\.compute_s)),
                    ("all-reduce", mean(\.allreduce_s)), ("all-reduce hidden behind backward", mean(\.allreduce_hidden_s))]
        return "<h2>Step time (mean per step)</h2><table>" + rows.map { "<tr><th>\($0.0)</th><td>\($0.1)</td></tr>" }.joined() + "</table>"
    }
}
