/// How a stored event is read back: the wire contract's fields (DESIGN, "The event on the wire")
/// plus `ingested_at`, as text columns (CSV, tables) and as one JSON object built by PostgreSQL
/// (search pages, the feed, NDJSON export), so every output names and formats them alike.
public enum EventColumns {
    /// RFC 3339 in UTC with microseconds, exactly what `::timestamptz` reads back (cursors rely on it).
    static func utcText(_ column: String) -> String {
        #"to_char(\#(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#
    }

    /// (output name, SQL giving text, SQL for the JSON value).
    static let all: [(name: String, text: String, json: String)] = [
        ("id", "id::text", "id"),
        ("tenant_id", "tenant_id::text", "tenant_id"),
        ("user_id", "user_id::text", "user_id"),
        ("action", "action", "action"),
        ("resource_type", "resource_type", "resource_type"),
        ("resource_id", "resource_id", "resource_id"),
        ("severity", "severity", "severity"),
        ("timestamp", utcText(#""timestamp""#), utcText(#""timestamp""#)),
        ("ip_address", "host(ip_address)", "host(ip_address)"),
        ("user_agent", "user_agent", "user_agent"),
        ("metadata", "custom_metadata::text", "custom_metadata"),
        ("ingested_at", utcText("ingested_at"), utcText("ingested_at")),
    ]

    /// The names, in output order (CSV header, table columns).
    public static var names: [String] { all.map(\.name) }

    /// One event as JSON text, keys in wire-contract order.
    static var jsonObject: String {
        "json_build_object(" + all.map { "'\($0.name)', \($0.json)" }.joined(separator: ", ") + ")::text"
    }

    /// Every field as a text column named like the JSON key.
    static var textColumns: String {
        all.map { "\($0.text) AS \($0.name == "timestamp" ? #""timestamp""# : $0.name)" }.joined(separator: ", ")
    }
}
