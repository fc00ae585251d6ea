import Postgres

/// `GET /v1/tenants/{id}/events/export` and `events export`: every event matching a filter,
/// oldest first, streamed with `COPY (SELECT ...) TO STDOUT`: rows reach `write` as PostgreSQL
/// sends them, so memory stays flat for a month or a year.
public struct EventExport: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case ndjson, csv

        public var contentType: String {
            switch self {
            case .ndjson: "application/x-ndjson"
            case .csv: "text/csv; charset=utf-8"
            }
        }
    }

    public static let parameterNames = EventFilter.parameterNames.union(["format", "csv_formulas"])

    public var tenantID: String
    public var filter: EventFilter
    public var format: Format
    /// CSV: free-text cells that would start a spreadsheet formula (`= + - @`, tab, CR) get a
    /// leading `'` (`csv_formulas=escape`, the default) or are written as stored (`keep`).
    public var keepFormulas: Bool

    public init(tenantID: String, parameters: [String: String]) throws(ReadError) {
        self.tenantID = tenantID
        filter = try EventFilter(parameters: parameters)
        guard let format = Format(rawValue: (parameters["format"] ?? "ndjson").lowercased()) else {
            throw .badParameter("format", "must be ndjson or csv, not \(parameters["format"] ?? "")")
        }
        self.format = format
        switch parameters["csv_formulas"]?.lowercased() {
        case nil, "escape": keepFormulas = false
        case "keep": keepFormulas = true
        case let other?: throw .badParameter("csv_formulas", "must be escape or keep, not \(other)")
        }
    }

    /// The COPY statement (CSV; NDJSON is made from it row by row by `EventJSON`) and its
    /// conditions. COPY takes no parameters: the values reach it as transaction-local settings
    /// (`SQLConditions.bindSettings`), never as text in the statement.
    var statement: (sql: String, conditions: SQLConditions) {
        var conditions = SQLConditions(binding: .settings)
        conditions.add("tenant_id = " + conditions.bind(tenantID, as: "uuid"))
        filter.apply(to: &conditions)
        // Qualified: a bare name in ORDER BY would mean the output column of that name (text).
        let order = #"ORDER BY audit_log."timestamp", audit_log.id"#
        let select = "SELECT \(EventColumns.textColumns(spreadsheetSafe: format == .csv && !keepFormulas)) FROM audit_log \(conditions.whereClause) \(order)"
        return ("COPY (\(select)) TO STDOUT (FORMAT csv\(format == .csv ? ", HEADER" : ""))", conditions)
    }

    /// Streams the export inside a `ReaderSession` (give it no statement timeout: a year takes
    /// a while). `write` gets about 64 KiB at a time. Returns the rows exported.
    @discardableResult
    public func run(on connection: PostgresConnection, write: ([UInt8]) throws -> Void) throws -> Int {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(Self.chunkSize + 4096)
        let (sql, conditions) = statement
        try conditions.bindSettings(on: connection)
        let rows = try connection.copyOut(sql) { data in  // one row per call
            if format == .ndjson {
                EventJSON.appendLine(csvRecord: data, to: &buffer)
            } else {
                buffer.append(contentsOf: data)
            }
            if buffer.count >= Self.chunkSize {
                try write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if !buffer.isEmpty { try write(buffer) }
        return rows
    }

    static let chunkSize = 64 * 1024
}
