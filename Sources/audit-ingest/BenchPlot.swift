import Bench
import Foundation

/// Events per second over time for both paths of a benchmark, as a small SVG line chart.
struct BenchPlot {
    let report: BenchReport

    init(_ report: BenchReport) { self.report = report }

    func svg(width: Double = 720, height: Double = 360) -> String {
        let series = [("audit-ingest", "#1f77b4", report.auditIngestRate), ("COPY csv", "#ff7f0e", report.copyBaselineRate)]
        let maxX = max(series.flatMap { $0.2.map { $0[0] } }.max() ?? 1, 1)
        let maxY = max(series.flatMap { $0.2.map { $0[1] } }.max() ?? 1, 1)
        let (left, bottom, right, top) = (60.0, height - 40, width - 20, 20.0)
        func point(_ sample: [Double]) -> String {
            String(format: "%.1f,%.1f", left + sample[0] / maxX * (right - left), bottom - sample[1] / maxY * (bottom - top))
        }
        var lines = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" font-family="sans-serif" font-size="12">"#,
            #"<line x1="\#(left)" y1="\#(bottom)" x2="\#(right)" y2="\#(bottom)" stroke="black"/>"#,
            #"<line x1="\#(left)" y1="\#(top)" x2="\#(left)" y2="\#(bottom)" stroke="black"/>"#,
            #"<text x="\#(left)" y="\#(height - 10)">0 s</text><text x="\#(right - 40)" y="\#(height - 10)">\#(String(format: "%.1f s", maxX))</text>"#,
            #"<text x="4" y="\#(top + 4)">\#(Int(maxY))/s</text>"#,
        ]
        for (index, (name, color, samples)) in series.enumerated() {
            lines.append(#"<polyline fill="none" stroke="\#(color)" stroke-width="2" points="\#(samples.map(point).joined(separator: " "))"/>"#)
            lines.append(#"<text x="\#(right - 160)" y="\#(top + 16 * Double(index + 1))" fill="\#(color)">\#(name)</text>"#)
        }
        lines.append("</svg>")
        return lines.joined(separator: "\n")
    }
}
