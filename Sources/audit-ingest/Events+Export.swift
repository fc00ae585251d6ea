import ArgumentParser
import AuditRead
import Foundation

extension Events {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every event of a tenant matching the filters, oldest first, streamed to a file (NDJSON or CSV).",
            discussion: "Memory stays flat whatever the size (COPY ... TO STDOUT). No statement timeout applies.")
        @OptionGroup var filters: Filters
        @Option(help: "ndjson or csv.") var format: String = "ndjson"
        @Option(name: .shortAndLong, help: "Output file (- for standard output), created readable by its owner only (0600).")
        var output: String
        @Flag(help: "CSV: write cells that start like a spreadsheet formula (= + - @ tab CR) as stored, not prefixed with '.")
        var keepFormulas = false
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let tenant = try filters.tenantID()
            var parameters = filters.parameters
            parameters["format"] = format
            if keepFormulas { parameters["csv_formulas"] = "keep" }
            let export = try Events.usage { () throws(ReadError) in try EventExport(tenantID: tenant, parameters: parameters) }
            let handle: FileHandle
            if output == "-" {
                handle = .standardOutput
            } else {
                // Every matching event of a tenant: its owner's only, whatever the umask (and also
                // when the file was there before, with wider rights).
                let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                guard fd >= 0, fchmod(fd, 0o600) == 0 else { throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))") }
                handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            }
            let rows = try Events.reading(tenant, on: try database.connect(), statementTimeout: .zero) { connection in
                try export.run(on: connection) { try handle.write(contentsOf: $0) }
            }
            if output != "-" { try handle.close() }
            FileHandle.standardError.write(Data("exported \(rows) event(s) to \(output)\n".utf8))
        }
    }
}
