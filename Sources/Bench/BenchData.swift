import AuditCore
import Foundation
import SampleData

/// The events of one benchmark, generated once and streamed to two files in the scratch
/// directory: NDJSON for audit-ingest, CSV of the valid ones for the baseline. Nothing of them
/// stays in memory, so a run of any size fits in a few MiB of the bench's own.
struct BenchData {
    let ndjsonPath: String
    let csvPath: String
    let tenantIDs: [String]
    let months: [Month]
    let lines: Int
    /// Rows of the CSV (the valid events).
    let validRows: Int
    let ndjsonBytes: Int
    /// Seconds spent generating and writing (not part of any measured path).
    let generationSeconds: Double

    /// - Parameter progress: called with the events written so far, about once a second.
    init(_ options: BenchOptions, directory: String, progress: (Int) -> Void = { _ in }) throws {
        let started = ContinuousClock.now
        ndjsonPath = directory + "/events.ndjson"
        csvPath = directory + "/events.csv"
        let ndjson = try BufferedFile(path: ndjsonPath)
        let csv = try BufferedFile(path: csvPath)
        var months = Set<Month>()
        var validRows = 0
        var written = 0
        var lastReport = started
        // Last month: every partition the run needs exists before it starts, whatever today is.
        let sample = SampleEvents.Options(count: options.events, tenants: options.tenants, months: options.months,
                                          endMonth: Month(unixDay: Int32(Date().timeIntervalSince1970 / 86_400)).previous,
                                          invalidRatio: options.invalidRatio)
        for var event in SampleEvents(sample) {
            if options.eventBytes > 0 { Self.pad(&event, to: options.eventBytes) }
            try ndjson.writeLine(SampleEvents.ndjson(event))
            if let line = SampleEvents.csv(event) {
                try csv.writeLine(line)
                validRows += 1
                if let year = Int(event.timestamp.prefix(4)), let month = Int(event.timestamp.dropFirst(5).prefix(2)),
                   (1...12).contains(month) { months.insert(Month(year: year, month: month)) }
            }
            written += 1
            if written % 65_536 == 0, lastReport.duration(to: .now) > .seconds(1) {
                lastReport = .now
                progress(written)
            }
        }
        try ndjson.close()
        try csv.close()
        self.months = months.sorted()
        tenantIDs = SampleEvents.tenantIDs(count: options.tenants)
        lines = options.events
        self.validRows = validRows
        ndjsonBytes = ndjson.bytesWritten
        generationSeconds = started.duration(to: .now).secondsDouble
    }

    /// Grows an event's metadata with a padding field until its line is about `bytes` long.
    private static func pad(_ event: inout SampleEvents.Event, to bytes: Int) {
        let missing = bytes - SampleEvents.ndjson(event).utf8.count - 10
        guard missing > 0, event.brokenLine == nil, event.metadata.hasPrefix("{") else { return }
        let padding = "\"pad\":\"" + String(repeating: "x", count: missing) + "\""
        event.metadata = event.metadata == "{}" ? "{" + padding + "}" : "{" + padding + "," + event.metadata.dropFirst()
    }
}
