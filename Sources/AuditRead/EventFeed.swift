import AuditCore
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
    public static let parameterNames: Set<String> = ["after", "from", "limit"]

    public var tenantID: String
    public var after: EventCursor?
    /// `from=end`: no events, only a cursor at the feed's end as of now, to follow what comes
    /// next without reading what is there (a live tail).
    public var fromEnd = false
    /// 1-1000. Default: 100.
    public var limit: Int

    public init(tenantID: String, parameters: [String: String], signer: CursorSigner) throws(ReadError) {
        self.tenantID = tenantID
        limit = try parseLimit(parameters["limit"])
        after = try parameters["after"].map { text throws(ReadError) in
            try signer.decode(text, parameter: "after", listing: .feed, tenantID: tenantID)
        }
        if let from = parameters["from"] {
            guard from == "end" else { throw .badParameter("from", "only end (a cursor at the feed's end, for a live tail)") }
            guard after == nil else { throw .badParameter("from", "give after or from=end, not both") }
            fromEnd = true
        }
    }

    /// A page after `after` (a position this process made, not a client's cursor).
    public init(tenantID: String, after: EventCursor?, limit: Int) {
        self.tenantID = tenantID
        self.after = after
        self.limit = limit
    }

    public struct Page: Sendable {
        /// Each event as a JSON object (text), in feed order.
        public var events: [String]
        /// The last event's position, unsigned; nil when the page is empty.
        public var last: EventCursor?
        /// Where to continue: the last event's position, or the `after` given when nothing new is
        /// final yet (nil only before the tenant's first event). Always poll with it.
        public var nextCursor: String?
    }

    /// Runs inside a `ReaderSession`.
    public func page(on connection: PostgresConnection, signer: CursorSigner) throws -> Page {
        if fromEnd { return Page(events: [], last: nil, nextCursor: signer.encode(try end(on: connection))) }
        let (events, last) = try read(on: connection)
        return Page(events: events, last: last, nextCursor: (last ?? after).map(signer.encode))
    }

    /// A position after every row that is final now: after the greatest key of the transaction
    /// just below the horizon. Every row written later has a transaction id at the horizon or
    /// above, so it comes after this position.
    func end(on connection: PostgresConnection) throws -> EventCursor {
        let horizon = UInt64(try connection.execute("SELECT feed_horizon()::text").scalar ?? "0") ?? 0
        return EventCursor(listing: .feed, tenantID: tenantID,
                           key: [String(horizon == 0 ? 0 : horizon - 1), "ffffffff-ffff-ffff-ffff-ffffffffffff", "infinity"])
    }

    /// The page's events and the last one's position (nil when none is final yet). Inside a `ReaderSession`.
    public func read(on connection: PostgresConnection) throws -> (events: [String], last: EventCursor?) {
        guard let statement = try statement(on: connection) else { return ([], nil) }
        let rows = try connection.query(statement.sql, statement.parameters).rows
        let last = rows.last.map { last in
            EventCursor(listing: .feed, tenantID: tenantID, key: [last[EventColumns.all.count]!, last[0]!, last[EventColumns.timestampIndex]!])
        }
        return (rows.map { EventJSON.object($0[..<EventColumns.all.count]) }, last)
    }

    /// The page's query, after reading the horizon and the months to scan; nil when no month of
    /// the tenant was written at or after the cursor's transaction. Inside a `ReaderSession`.
    public func statement(on connection: PostgresConnection) throws -> (sql: String, parameters: [String?])? {
        var conditions = SQLConditions(binding: .parameters)
        conditions.add("tenant_id = " + conditions.bind(tenantID, as: "uuid"))
        // In a statement of its own, before the rows' (see feed_horizon(), migration 0011).
        let horizon = try connection.execute("SELECT feed_horizon()::text").scalar ?? "0"
        conditions.add("ingest_xid < " + conditions.bind(horizon, as: "xid8"))
        // Only the months this tenant's rows were written to at or after the cursor's transaction
        // (migration 0023), read after the horizon: a page costs what was ingested since its
        // cursor, not an index probe in every month of event time.
        let months = try connection.query("""
            SELECT to_char(month, 'YYYY-MM') FROM tenant_feed_month
            WHERE tenant_id = $1::uuid AND last_xid >= coalesce($2::xid8, '0'::xid8)
            UNION SELECT to_char(month, 'YYYY-MM') FROM feed_legacy_month ORDER BY 1
            """, [tenantID, after?.key[0]]).rows.compactMap { $0[0].flatMap(Month.init) }
        guard !months.isEmpty else { return nil }
        conditions.add("(" + Self.timeRanges(months).map { range in
            #"("timestamp" >= "# + conditions.bind(range.from, as: "timestamptz")
                + #" AND "timestamp" < "# + conditions.bind(range.until, as: "timestamptz") + ")"
        }.joined(separator: " OR ") + ")")
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
        return (sql, conditions.parameters)
    }

    /// `months` (ascending) as UTC time ranges, consecutive months merged: the bounds partition
    /// pruning compares with each partition's.
    static func timeRanges(_ months: [Month]) -> [(from: String, until: String)] {
        var ranges: [(first: Month, last: Month)] = []
        for month in months {
            if let last = ranges.last?.last, last.next == month { ranges[ranges.count - 1].last = month } else { ranges.append((month, month)) }
        }
        return ranges.map { ($0.first.firstDayISO + " 00:00+00", $0.last.next.firstDayISO + " 00:00+00") }
    }
}
