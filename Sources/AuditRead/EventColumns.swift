/// How a stored event is read back: the wire contract's fields (DESIGN, "The event on the wire")
/// plus `ingested_at`, as text columns, from which every output is made (CSV, tables, and JSON by
/// `EventJSON`), so they all name and format them alike.
public enum EventColumns {
    /// RFC 3339 in UTC with microseconds, exactly what `::timestamptz` reads back (cursors rely on it).
    static func utcText(_ column: String) -> String {
        #"to_char(\#(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#
    }

    /// (output name, SQL giving its text). `metadata` is JSON text (jsonb's output).
    static let all: [(name: String, text: String)] = [
        ("id", "id::text"),
        ("tenant_id", "tenant_id::text"),
        ("user_id", "user_id::text"),
        ("action", "action"),
        ("resource_type", "resource_type"),
        ("resource_id", "resource_id"),
        ("severity", "severity"),
        ("timestamp", utcText(#""timestamp""#)),
        ("ip_address", "host(ip_address)"),
        ("user_agent", "user_agent"),
        ("metadata", "custom_metadata::text"),
        ("ingested_at", utcText("ingested_at")),
    ]

    static let timestampIndex = all.firstIndex { $0.name == "timestamp" }!

    /// The names, in output order (CSV header, table columns).
    public static var names: [String] { all.map(\.name) }

    /// Every field as a text column named like the JSON key; with `spreadsheetSafe`, free-text
    /// fields that would start a formula are prefixed with `'` (`SafeText`).
    static func textColumns(spreadsheetSafe: Bool = false) -> String {
        all.map { column in
            let text = spreadsheetSafe && SafeText.freeTextColumns.contains(column.name) ? SafeText.spreadsheetCellSQL(column.text) : column.text
            return "\(text) AS \(column.name == "timestamp" ? #""timestamp""# : column.name)"
        }.joined(separator: ", ")
    }
}
