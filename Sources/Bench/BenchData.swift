import AuditCore
import Foundation
import SampleData

/// The events of one benchmark, written once: NDJSON for audit-ingest, CSV of the valid ones for
/// the baseline, and the tenants and months they use.
struct BenchData {
    let ndjsonPath: String
    let csv: [UInt8]
    let tenantIDs: [String]
    let months: [Month]
    let lines: Int
    /// Rows of `csv` (the valid events).
    let validRows: Int
    let ndjsonBytes: Int

    init(_ options: BenchOptions, directory: String) throws {
        var ndjson = [UInt8]()
        var csv = [UInt8]()
        var months = Set<Month>()
        var validRows = 0
        // Last month: every partition the run needs exists before it starts, whatever today is.
        let sample = SampleEvents.Options(count: options.events, tenants: options.tenants, months: options.months,
                                          endMonth: Month(unixDay: Int32(Date().timeIntervalSince1970 / 86_400)).previous,
                                          invalidRatio: options.invalidRatio)
        for var event in SampleEvents(sample) {
            if options.eventBytes > 0 { Self.pad(&event, to: options.eventBytes) }
            ndjson += Array(SampleEvents.ndjson(event).utf8) + [0x0A]
            if let line = SampleEvents.csv(event) {
                csv += Array(line.utf8) + [0x0A]
                validRows += 1
                if let year = Int(event.timestamp.prefix(4)), let month = Int(event.timestamp.dropFirst(5).prefix(2)),
                   (1...12).contains(month) { months.insert(Month(year: year, month: month)) }
            }
        }
        ndjsonPath = directory + "/events.ndjson"
        try Data(ndjson).write(to: URL(fileURLWithPath: ndjsonPath))
        self.csv = csv
        self.months = months.sorted()
        tenantIDs = SampleEvents.tenantIDs(count: options.tenants)
        lines = options.events
        self.validRows = validRows
        ndjsonBytes = ndjson.count
    }

    /// Grows an event's metadata with a padding field until its line is about `bytes` long.
    private static func pad(_ event: inout SampleEvents.Event, to bytes: Int) {
        let missing = bytes - SampleEvents.ndjson(event).utf8.count - 10
        guard missing > 0, event.brokenLine == nil, event.metadata.hasPrefix("{") else { return }
        let padding = "\"pad\":\"" + String(repeating: "x", count: missing) + "\""
        event.metadata = event.metadata == "{}" ? "{" + padding + "}" : "{" + padding + "," + event.metadata.dropFirst()
    }
}
