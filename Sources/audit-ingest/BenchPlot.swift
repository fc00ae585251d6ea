import Bench
import Foundation

/// A benchmark as an SVG picture for a capacity review: events/s over time for both paths, and
/// below it the cores the server and audit-ingest kept busy, on one time axis, with ticks, units,
/// gridlines and a legend that carries each path's totals.
struct BenchPlot {
    let report: BenchReport

    init(_ report: BenchReport) { self.report = report }

    private struct Series {
        var name: String
        var color: String
        var dashed = false
        var points: [(x: Double, y: Double)]
    }

    private struct Panel {
        var top: Double
        var bottom: Double
        var maxY: Double
        var yLabel: String
        var format: (Double) -> String
    }

    private static let ingestColor = "#1f6fb4", copyColor = "#e8730c"
    private let width = 900.0, left = 78.0, right = 880.0

    func svg() -> String {
        // Samplers run a moment past their path's end: what they saw after it is not the path's.
        let ingestEnd = report.auditIngest.wallSeconds + 0.25, copyEnd = report.copyBaseline.wallSeconds + 0.25
        let rates = [
            Series(name: "audit-ingest", color: Self.ingestColor, points: report.auditIngestRate.filter { $0[0] <= ingestEnd }.map { ($0[0], $0[1]) }),
            Series(name: "COPY csv", color: Self.copyColor, points: report.copyBaselineRate.filter { $0[0] <= copyEnd }.map { ($0[0], $0[1]) }),
        ]
        let cores = [
            Series(name: "server, audit-ingest's run", color: Self.ingestColor, points: report.auditIngest.cpu.filter { $0[0] <= ingestEnd }.map { ($0[0], $0[1]) }),
            Series(name: "audit-ingest itself", color: Self.ingestColor, dashed: true,
                   points: report.auditIngest.cpu.filter { $0[0] <= ingestEnd }.compactMap { $0.count > 2 ? ($0[0], $0[2]) : nil }),
            Series(name: "server, COPY's run", color: Self.copyColor, points: report.copyBaseline.cpu.filter { $0[0] <= copyEnd }.map { ($0[0], $0[1]) }),
        ]
        let maxX = Self.niceCeiling(max(ingestEnd, copyEnd, 1))
        let rateTop = Self.niceCeiling(max(rates.flatMap { $0.points.map(\.y) }.max() ?? 1, 1))
        let coreTop = Self.niceCeiling(max(cores.flatMap { $0.points.map(\.y) }.max() ?? 1,
                                           Double(ProcessInfo.processInfo.activeProcessorCount)))
        let ratePanel = Panel(top: 118, bottom: 398, maxY: rateTop, yLabel: "events stored per second", format: Self.compact)
        let corePanel = Panel(top: 448, bottom: 598, maxY: coreTop, yLabel: "CPU cores busy", format: { String(format: "%g", $0) })
        var parts = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="650" viewBox="0 0 900 650" font-family="sans-serif" font-size="12">"#,
            #"<rect width="900" height="650" fill="white"/>"#,
            #"<text x="\#(left)" y="24" font-size="16" font-weight="bold">\#(escape(title))</text>"#,
        ]
        parts += legend(top: 40)
        parts += axes(ratePanel, maxX: maxX, xLabel: nil)
        parts += rates.map { polyline($0, ratePanel, maxX: maxX) }
        parts += axes(corePanel, maxX: maxX, xLabel: "seconds since the path started")
        parts += cores.map { polyline($0, corePanel, maxX: maxX) }
        parts += coreLegend(cores, panel: corePanel)
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    private var title: String {
        "audit-ingest bench: \(report.events.formatted()) events, \(report.mode), " + String(format: "%.2fx", report.ratio) + " the rate of COPY"
    }

    /// One line per path with its totals.
    private func legend(top: Double) -> [String] {
        func totals(_ path: PathResult, rows: Int) -> String {
            var text = "\(rows.formatted()) rows in " + String(format: "%.1f s", path.wallSeconds) + ", "
                + Self.compact(path.eventsPerSecond) + " events/s"
            if let server = path.serverCPUSeconds { text += String(format: ", server CPU %.1f s", server) }
            if let ingest = path.ingestCPUSeconds { text += String(format: ", own CPU %.1f s", ingest) }
            if let wal = path.walMiB { text += String(format: ", WAL %.0f MiB", wal) }
            return text
        }
        let copyRows = Int((report.copyBaseline.eventsPerSecond * report.copyBaseline.wallSeconds).rounded())
        let entries = [("audit-ingest", Self.ingestColor, totals(report.auditIngest, rows: report.stored)),
                       ("COPY csv, 1 stream", Self.copyColor, totals(report.copyBaseline, rows: copyRows))]
        return entries.enumerated().flatMap { index, entry in
            let y = top + Double(index) * 20
            return [#"<line x1="\#(left)" y1="\#(y + 8)" x2="\#(left + 24)" y2="\#(y + 8)" stroke="\#(entry.1)" stroke-width="3"/>"#,
                    #"<text x="\#(left + 32)" y="\#(y + 12)"><tspan font-weight="bold">\#(escape(entry.0))</tspan>: \#(escape(entry.2))</text>"#]
        }
    }

    private func coreLegend(_ series: [Series], panel: Panel) -> [String] {
        series.enumerated().flatMap { index, line in
            let x = left + 10 + Double(index) * 230, y = panel.top - 14
            return [#"<line x1="\#(x)" y1="\#(y)" x2="\#(x + 24)" y2="\#(y)" stroke="\#(line.color)" stroke-width="2"\#(line.dashed ? #" stroke-dasharray="5 3""# : "")/>"#,
                    #"<text x="\#(x + 30)" y="\#(y + 4)">\#(escape(line.name))</text>"#]
        }
    }

    /// Frame, gridlines and tick labels of a panel; the time axis under it.
    private func axes(_ panel: Panel, maxX: Double, xLabel: String?) -> [String] {
        var parts: [String] = []
        for tick in Self.ticks(upTo: panel.maxY) {
            let y = yPosition(tick, panel)
            parts.append(#"<line x1="\#(left)" y1="\#(y)" x2="\#(right)" y2="\#(y)" stroke="rgb(227,227,227)"/>"#)
            parts.append(#"<text x="\#(left - 6)" y="\#(y + 4)" text-anchor="end">\#(panel.format(tick))</text>"#)
        }
        for tick in Self.ticks(upTo: maxX) {
            let x = xPosition(tick, maxX: maxX)
            parts.append(#"<line x1="\#(x)" y1="\#(panel.top)" x2="\#(x)" y2="\#(panel.bottom)" stroke="rgb(238,238,238)"/>"#)
            parts.append(#"<text x="\#(x)" y="\#(panel.bottom + 16)" text-anchor="middle">\#(String(format: "%g s", tick))</text>"#)
        }
        parts.append(#"<rect x="\#(left)" y="\#(panel.top)" width="\#(right - left)" height="\#(panel.bottom - panel.top)" fill="none" stroke="rgb(85,85,85)"/>"#)
        let middle = (panel.top + panel.bottom) / 2
        parts.append(#"<text x="16" y="\#(middle)" transform="rotate(-90 16 \#(middle))" text-anchor="middle">\#(escape(panel.yLabel))</text>"#)
        if let xLabel { parts.append(#"<text x="\#((left + right) / 2)" y="\#(panel.bottom + 36)" text-anchor="middle">\#(escape(xLabel))</text>"#) }
        return parts
    }

    private func polyline(_ series: Series, _ panel: Panel, maxX: Double) -> String {
        let points = series.points.map { String(format: "%.1f,%.1f", xPosition($0.x, maxX: maxX), yPosition(min($0.y, panel.maxY), panel)) }
        return #"<polyline fill="none" stroke="\#(series.color)" stroke-width="\#(series.dashed ? 1.5 : 2)"\#(series.dashed ? #" stroke-dasharray="5 3""# : "") points="\#(points.joined(separator: " "))"><title>\#(escape(series.name))</title></polyline>"#
    }

    private func xPosition(_ x: Double, maxX: Double) -> Double { left + x / maxX * (right - left) }
    private func yPosition(_ y: Double, _ panel: Panel) -> Double { panel.bottom - y / panel.maxY * (panel.bottom - panel.top) }

    /// The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        let power = pow(10, floor(log10(value)))
        return [1, 2, 2.5, 5, 10].map { $0 * power }.first { $0 >= value * 0.999_999 } ?? 10 * power
    }

    /// About five round ticks from 0 to `top` inclusive.
    static func ticks(upTo top: Double) -> [Double] {
        let step = niceCeiling(top / 5)
        return stride(from: 0, through: top + step * 1e-9, by: step).map { $0 }
    }

    /// 1234567 as "1.2M", 45600 as "45.6k".
    static func compact(_ value: Double) -> String {
        switch value {
        case 1_000_000...: String(format: "%gM", (value / 100_000).rounded() / 10)
        case 1_000...: String(format: "%gk", (value / 100).rounded() / 10)
        default: String(format: "%g", value)
        }
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
