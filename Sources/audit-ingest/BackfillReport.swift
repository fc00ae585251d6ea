import Foundation
import Pipeline

extension IngestSummary {
    /// One file's line when a run reads several (the run's totals follow in a `report`).
    func line(path: String) -> String {
        var parts = ["\(messages) lines"]
        if extraRecords > 0 { parts.append("\(messages + Int64(extraRecords)) records") }
        parts += ["\(stored) stored", "\(deadLetteredTotal) dead-lettered", "\(alreadyCommitted) already committed"]
        if heldBackBytes > 0 { parts.append("last line held back (\(heldBackBytes) bytes, no newline yet)") }
        if !isComplete { parts.append("INCOMPLETE") }
        return "\(path): " + parts.joined(separator: ", ")
    }

    func report(path: String) -> String {
        var counts = [("lines read", "\(messages)"), ("already committed", "\(alreadyCommitted)")]
        if extraRecords > 0 { counts.insert(("records", "\(messages + Int64(extraRecords))"), at: 1) }
        var lines = summaryLines(title: "\(path):", counts: counts,
                                 stored: stored, deadLettered: deadLettered, partitionsCreated: partitionsCreated,
                                 seconds: seconds, eventsPerSecond: eventsPerSecond)
        if heldBackBytes > 0 {
            lines.append("  held back           the last line (\(heldBackBytes) bytes): no newline and not whole JSON yet, so its")
            lines.append("                      writer may be writing it; a later run reads it (--partial-last-line take: now)")
        }
        if !isComplete {
            lines.append("  INCOMPLETE: \(messages + Int64(extraRecords) - alreadyCommitted - Int64(stored + deadLetteredTotal)) event(s) not accounted for")
        }
        return lines.joined(separator: "\n")
    }
}

/// The summary both backfill and consume print: source-specific counts, then what was stored,
/// dead-lettered (by reason), partitions created, time and rate.
func summaryLines(title: String, counts: [(String, String)], stored: Int, deadLettered: [String: Int],
                  partitionsCreated: Int, seconds: Double, eventsPerSecond: Double) -> [String] {
    func line(_ label: String, _ value: String) -> String { "  " + label.padding(toLength: 20, withPad: " ", startingAt: 0) + value }
    var lines = [title] + counts.map { line($0.0, $0.1) }
    lines.append(line("stored", "\(stored)"))
    lines.append(line("dead-lettered", "\(deadLettered.values.reduce(0, +))"))
    for (reason, count) in deadLettered.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
        lines.append("    \(String(count).padding(toLength: 8, withPad: " ", startingAt: 0))\(reason)")
    }
    lines.append(line("partitions created", "\(partitionsCreated)"))
    lines.append(line("seconds", String(format: "%.2f", seconds)))
    lines.append(line("events/s", String(format: "%.0f", eventsPerSecond)))
    return lines
}

/// One self-overwriting line on standard error: bytes, events/s, ETA.
final class ProgressMeter {
    private let totalBytes: Int?
    private let enabled: Bool
    private let started = ContinuousClock.now

    init(totalBytes: Int?, enabled: Bool) {
        self.totalBytes = totalBytes
        self.enabled = enabled
    }

    func update(_ snapshot: IngestStatistics.Snapshot) {
        guard enabled else { return }
        let seconds = max(started.duration(to: .now).secondsDouble, 0.001)
        let handled = Double(snapshot.stored + snapshot.deadLetteredTotal)
        var line = String(format: "\r%8.1f MB  %9.0f events/s  %d stored  %d dead-lettered",
                          Double(snapshot.bytesRead) / 1e6, handled / seconds, snapshot.stored, snapshot.deadLetteredTotal)
        if let totalBytes, snapshot.bytesRead > 0 {
            let remaining = seconds * Double(totalBytes - snapshot.bytesRead) / Double(snapshot.bytesRead)
            line += String(format: "  %.0f%%  ETA %.0fs", 100 * Double(snapshot.bytesRead) / Double(totalBytes), remaining)
        }
        FileHandle.standardError.write(Data((line + "   ").utf8))
    }

    func clear() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
