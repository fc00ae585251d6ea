import Postgres

/// `GET /v1/tenants/{id}/feed`: every event of a tenant once, in the order of the transactions
/// that stored them, for pollers (SIEMs) that must never miss one.
///
/// Rows are ordered by (ingest_xid, id, "timestamp"): the writing transaction's id (migration
/// 0009), then the row's key. A page holds only rows whose transaction id is below the feed's
/// horizon (`feed_horizon()`, migration 0011): the oldest transaction still running that may
/// write audit_log. Every transaction below it has ended, and every writer that has not yet
/// written gets a higher id, so no row can later appear before the cursor. A late event (an old
/// timestamp, a backfill) lands at the end with its transaction, and a writer that commits after
/// a later-numbered one holds the feed back until it ends rather than being skipped. Writers
/// announce themselves (a lock on feed_writer) before they have an id; other transactions, a
/// tenant analyst's long one included, do not hold the feed back.
public struct EventFeed: Sendable {
    public static let parameterNames: Set<String> = ["after", "limit"]

    public var tenantID: String
    public var after: EventCursor?
    /// 1-1000. Default: 100.
    public var limit: Int

    public init(tenantID: String, parameters: [String: String], signer: CursorSigner) throws(ReadError) {
        self.tenantID = tenantID
        limit = try parseLimit(parameters["limit"])
        after = try parameters["after"].map { text throws(ReadError) in
            try signer.decode(text, parameter: "after", listing: .feed, tenantID: tenantID)
        }
    }

    public struct Page: Sendable {
        /// Each event as a JSON object (text), in feed order.
        public var events: [String]
        /// Where to continue: the last event's position, or the `after` given when nothing new is
        /// final yet (nil only before the tenant's first event). Always poll with it.
        public var nextCursor: String?
    }

    /// Runs inside a `ReaderSession`.
    public func page(on connection: PostgresConnection, signer: CursorSigner) throws -> Page {
        var conditions = SQLConditions(binding: .parameters)
        conditions.add("tenant_id = " + conditions.bind(tenantID, as: "uuid"))
        // In a statement of its own, before the rows' (see feed_horizon(), migration 0011).
        let horizon = try connection.execute("SELECT feed_horizon()::text").scalar ?? "0"
        conditions.add("ingest_xid < " + conditions.bind(horizon, as: "xid8"))
        if let after {
            let position = "(" + conditions.bind(after.key[0], as: "xid8") + ", " + conditions.bind(after.key[1], as: "uuid")
                + ", " + conditions.bind(after.key[2], as: "timestamptz") + ")"
            conditions.add(#"(ingest_xid, id, "timestamp") > "# + position)
        }
        // ORDER BY names the table's columns: bare, `ingest_xid` would be the text output column
        // ("1000" < "993"), which is not the order the cursor condition follows.
        let sql = """
            SELECT \(EventColumns.textColumns()), ingest_xid::text AS feed_xid
            FROM audit_log \(conditions.whereClause)
            ORDER BY audit_log.ingest_xid, audit_log.id, audit_log."timestamp" LIMIT \(limit)
            """
        let rows = try connection.query(sql, conditions.parameters).rows
        let next = rows.last.map { last in
            signer.encode(EventCursor(listing: .feed, tenantID: tenantID,
                                      key: [last[EventColumns.all.count]!, last[0]!, last[EventColumns.timestampIndex]!]))
        }
        return Page(events: rows.map { EventJSON.object($0[..<EventColumns.all.count]) }, nextCursor: next ?? after.map(signer.encode))
    }
}
