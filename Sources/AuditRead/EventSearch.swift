import Postgres

/// `GET /v1/tenants/{id}/events` and `events search`: one page of a tenant's events matching a
/// filter, newest first (or oldest first), with keyset pagination on ("timestamp", id), which is
/// unique per tenant and is the primary key's order within a tenant ((tenant_id, "timestamp", id)):
/// pages never overlap or leave gaps, whatever is written meanwhile before the cursor.
public struct EventSearch: Sendable {
    /// The parameter names a search reads.
    public static let parameterNames = EventFilter.parameterNames.union(["limit", "cursor", "order"])

    public var tenantID: String
    public var filter: EventFilter
    /// 1-1000. Default: 100.
    public var limit: Int
    public var oldestFirst: Bool
    public var cursor: EventCursor?

    /// Reads `parameters` (the HTTP query or CLI flags) for `tenantID`; cursors are checked with `signer`.
    public init(tenantID: String, parameters: [String: String], signer: CursorSigner) throws(ReadError) {
        self.tenantID = tenantID
        filter = try EventFilter(parameters: parameters)
        limit = try parseLimit(parameters["limit"])
        switch parameters["order"]?.lowercased() {
        case nil, "desc": oldestFirst = false
        case "asc": oldestFirst = true
        case let other?: throw .badParameter("order", "must be asc or desc, not \(other)")
        }
        cursor = try parameters["cursor"].map { text throws(ReadError) in
            try signer.decode(text, parameter: "cursor", listing: listing, tenantID: tenantID)
        }
    }

    var listing: EventCursor.Listing { oldestFirst ? .oldestFirst : .newestFirst }

    public struct Page: Sendable {
        /// Each event as a JSON object (text), in order.
        public var events: [String]
        /// Each event's fields as text, named by `EventColumns.names`.
        public var rows: [[String?]]
        /// Where the next page starts; nil when this was the last one.
        public var nextCursor: String?
    }

    /// Runs the search inside a `ReaderSession`.
    public func page(on connection: PostgresConnection, signer: CursorSigner) throws -> Page {
        let (sql, parameters) = statement()
        let result = try connection.query(sql, parameters)
        let rows = result.rows.prefix(limit)
        var next: String?
        if result.rows.count > limit, let last = rows.last {
            next = signer.encode(EventCursor(listing: listing, tenantID: tenantID, key: [last[EventColumns.timestampIndex]!, last[0]!]))
        }
        return Page(events: rows.map { EventJSON.object($0[...]) }, rows: Array(rows), nextCursor: next)
    }

    /// The page's query and its parameters (one more row than `limit`: whether a next page exists).
    /// The plan tests EXPLAIN exactly this.
    package func statement() -> (sql: String, parameters: [String?]) {
        var conditions = SQLConditions(binding: .parameters)
        conditions.add("tenant_id = " + conditions.bind(tenantID, as: "uuid"))
        filter.apply(to: &conditions)
        let direction = oldestFirst ? "ASC" : "DESC"
        if let cursor {
            let comparison = oldestFirst ? ">" : "<"
            let timestamp = conditions.bind(cursor.key[0], as: "timestamptz")
            let id = conditions.bind(cursor.key[1], as: "uuid")
            // The first condition lets the planner bound the (tenant_id, "timestamp") index scan.
            conditions.add(#""timestamp" \#(comparison)= \#(timestamp) AND ("timestamp", id) \#(comparison) (\#(timestamp), \#(id))"#)
        }
        // Qualified ORDER BY: the bare names are the text output columns, which no index serves.
        let sql = """
            SELECT \(EventColumns.textColumns())
            FROM audit_log \(conditions.whereClause)
            ORDER BY audit_log."timestamp" \(direction), audit_log.id \(direction) LIMIT \(limit + 1)
            """
        return (sql, conditions.parameters)
    }
}
