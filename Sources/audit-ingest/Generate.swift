import ArgumentParser
import AuditCore
import Foundation
import Pipeline
import Postgres
import SampleData

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write deterministic sample audit events (NDJSON, or the equivalent CSV for psql \\copy).",
        discussion: """
            The same --seed gives the same events. With --register-tenants the tenants the events \
            use are inserted into the tenant table of --database-url / DATABASE_URL first.
            """
    )

    @Option(help: "Number of events.") var events: Int = 10_000
    @Option(help: "Number of tenants.") var tenants: Int = 8
    @Option(help: "Months the timestamps cover, ending with --end-month.") var months: Int = 3
    @Option(help: """
        Last month (YYYY-MM). Default: the month of the day before yesterday. No event lies in \
        the future: a later month is clamped, and the last month ends two days before today.
        """) var endMonth: String?
    @Option(help: "Fraction (0-1) of deliberately broken lines.") var invalidRatio: Double = 0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "ndjson or csv (csv omits broken lines).") var format: String = "ndjson"
    @Option(name: .shortAndLong, help: "Output file (default: standard output).") var output: String?
    @Flag(help: "Insert the tenants into the database first.") var registerTenants = false
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let end = try endMonth.map { text in
            guard let month = Month(text) else { throw ValidationError("--end-month must look like 2026-10, not \(text)") }
            return month
        }
        guard format == "ndjson" || format == "csv" else { throw ValidationError("--format must be ndjson or csv") }
        if registerTenants {
            let connection = try database.connect()
            for (index, id) in SampleEvents.tenantIDs(count: tenants, seed: seed).enumerated() {
                try connection.query("INSERT INTO tenant (id, name, code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                     [id, "Sample tenant \(index + 1)", "sample-\(seed)-\(index + 1)"])
            }
        }
        let handle: FileHandle
        if let output {
            // Opened in place (not FileManager.createFile, which replaces the path by rename and
            // would turn /dev/stdout or a named pipe into a regular file).
            let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))") }
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        } else {
            handle = FileHandle.standardOutput
        }
        let options = SampleEvents.Options(count: events, tenants: tenants, months: months, endMonth: end,
                                           invalidRatio: invalidRatio, seed: seed)
        if let end, options.endMonth < end {
            FileHandle.standardError.write(Data("""
                note: --end-month \(end) lies in the future: the events end in \(options.endMonth) instead

                """.utf8))
        }
        var buffer = ""
        for event in SampleEvents(options) {
            guard let line = format == "csv" ? SampleEvents.csv(event) : SampleEvents.ndjson(event) else { continue }
            buffer += line
            buffer += "\n"
            if buffer.utf8.count > 1 << 20 {
                handle.write(Data(buffer.utf8))
                buffer = ""
            }
        }
        handle.write(Data(buffer.utf8))
        if output != nil { try handle.close() }
    }
}
