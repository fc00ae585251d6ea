import ArgumentParser
import AuditRead
import Foundation
import Postgres

extension Events {
    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One page of a tenant's events, newest first (--order asc: oldest first).",
            discussion: "When there are more, the cursor of the next page is printed on standard error: pass it as --cursor.")
        @OptionGroup var filters: Filters
        @Option(help: "Events per page, 1-1000.") var limit: Int = 100
        @Option(help: "desc (newest first) or asc.") var order: String = "desc"
        @Option(help: "The cursor of the page to show (from the previous page).") var cursor: String?
        @Option(help: "table, ndjson or csv.") var format: String = "table"
        @Flag(help: "CSV: write cells that start like a spreadsheet formula (= + - @ tab CR) as stored, not prefixed with '.")
        var keepFormulas = false
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            guard ["table", "ndjson", "csv"].contains(format) else { throw ValidationError("--format must be table, ndjson or csv") }
            let tenant = try filters.tenantID()
            var parameters = filters.parameters
            parameters["limit"] = String(limit)
            parameters["order"] = order
            parameters["cursor"] = cursor
            let connection = try database.connect()
            let signer = try CursorSigner.load(on: connection)  // as the connecting role: readers may not read the key
            let search = try Events.usage { () throws(ReadError) in try EventSearch(tenantID: tenant, parameters: parameters, signer: signer) }
            let page = try Events.reading(tenant, on: connection) { try search.page(on: $0, signer: signer) }
            switch format {
            case "ndjson": page.events.forEach { print($0) }
            case "csv": print(CSVText.document(header: EventColumns.names, rows: page.rows, keepFormulas: keepFormulas), terminator: "")
            default: print(TableText.render(page.rows), terminator: "")
            }
            if let next = page.nextCursor { FileHandle.standardError.write(Data("next page: --cursor \(next)\n".utf8)) }
        }
    }
}

/// RFC 4180 CSV, quoting only fields that need it (as PostgreSQL's COPY CSV does). Free-text
/// cells that would start a spreadsheet formula get a leading `'` unless `keepFormulas`.
enum CSVText {
    static func document(header: [String], rows: [[String?]], keepFormulas: Bool = false) -> String {
        let neutralised = Set(header.indices.filter { !keepFormulas && SafeText.freeTextColumns.contains(header[$0]) })
        let cells = rows.map { row in
            row.indices.map { neutralised.contains($0) ? row[$0].map(SafeText.spreadsheetCell) : row[$0] }
        }
        return ([header.map(Optional.some)] + cells).map { $0.map(field).joined(separator: ",") + "\n" }.joined()
    }

    static func field(_ value: String?) -> String {
        guard let value else { return "" }
        guard value.isEmpty || value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A plain-text table of the columns an operator scans first.
enum TableText {
    static let columns = ["timestamp", "severity", "action", "user_id", "resource_type", "resource_id", "id"]

    static func render(_ rows: [[String?]]) -> String {
        let indexes = columns.map { EventColumns.names.firstIndex(of: $0)! }
        // Control characters as visible escapes: a stored line feed or ESC cannot forge a row.
        let cells = [columns] + rows.map { row in indexes.map { row[$0].map(SafeText.terminal) ?? "-" } }
        let widths = columns.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
        return cells.map { line in
            zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces) + "\n"
        }.joined()
    }
}
