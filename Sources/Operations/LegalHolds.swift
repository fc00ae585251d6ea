import Foundation
import Postgres

/// Legal holds (migration 0028): while a hold is placed, nothing of its tenant inside its range of
/// event times is removed, neither by the tenant's retention nor by `partitions prune`.
///
/// Every removal (a prune, from its first detach to its last drop; a retention run) holds the
/// removal lock, and checks the holds under SHARE on tenant_legal_hold in each transaction that
/// removes. Placing a hold waits for the removal lock (shared: holds do not wait for each other).
/// A hold is therefore either seen by a removal or placed after it ended: never missed by one in
/// flight, and never placed between a prune's detach and its drop.
public enum LegalHolds {
    /// The advisory lock key of removals (`pg_advisory_lock`).
    static let removalLock: Int64 = 7022629598042026613
    public struct Hold: Codable, Sendable, Equatable {
        public var id: Int64
        public var tenantID: String
        public var reason: String
        /// Event times held, [from, until); nil: open at that end.
        public var eventsFrom: String?
        public var eventsUntil: String?
        public var placedAt: String
        public var placedBy: String
        public var releasedAt: String?
        public var releasedBy: String?

        static let columns = """
            id::text, tenant_id::text, reason, to_char(events_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            to_char(events_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), placed_by,
            to_char(released_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), released_by
            """

        init?(row: [String?]) {
            guard let id = row[0].flatMap({ Int64($0) }), let tenant = row[1], let reason = row[2], let placedAt = row[5],
                  let placedBy = row[6] else { return nil }
            self.id = id
            tenantID = tenant
            self.reason = reason
            eventsFrom = row[3]
            eventsUntil = row[4]
            self.placedAt = placedAt
            self.placedBy = placedBy
            releasedAt = row[7]
            releasedBy = row[8]
        }
    }

    /// Places a hold on `tenant`'s events in [from, until) (PostgreSQL timestamps; nil: open).
    public static func place(tenant: String, reason: String, from: String?, until: String?, on connection: PostgresConnection) throws -> Hold {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...500).contains(trimmed.count) else { throw OperationsError("--reason must say why, in 1 to 500 characters") }
        guard try connection.query("SELECT EXISTS (SELECT FROM tenant WHERE id = $1::uuid)", [tenant]).scalar == "t" else {
            throw OperationsError("no tenant \(tenant)")
        }
        let row = try explainingRefusals {
            try connection.transaction { connection in
                try connection.execute("SET LOCAL lock_timeout = '30s'")
                try connection.execute("SELECT pg_advisory_xact_lock_shared(\(removalLock))")
                return try connection.query("""
                    INSERT INTO tenant_legal_hold (tenant_id, reason, events_from, events_until)
                    SELECT $1::uuid, $2, $3::timestamptz, $4::timestamptz
                    WHERE coalesce(isfinite($3::timestamptz), true) AND coalesce(isfinite($4::timestamptz), true)
                    RETURNING \(Hold.columns)
                    """, [tenant, trimmed, from, until]).rows.first
            }
        }
        guard row != nil else { throw OperationsError("--from and --until must be times (2026-01-31T12:00:00Z), not infinity") }
        guard let hold = row.flatMap(Hold.init(row:)) else { throw OperationsError("placing the hold returned no row") }
        return hold
    }

    /// Releases a hold (kept, with who released it and when); false when there is no such hold in place.
    public static func release(id: Int64, on connection: PostgresConnection) throws -> Bool {
        try connection.query("""
            UPDATE tenant_legal_hold SET released_at = now(), released_by = current_user WHERE id = $1::bigint AND released_at IS NULL
            """, [String(id)]).affectedRows == 1
    }

    public static func list(includeReleased: Bool, on connection: PostgresConnection) throws -> [Hold] {
        try connection.execute("""
            SELECT \(Hold.columns) FROM tenant_legal_hold \(includeReleased ? "" : "WHERE released_at IS NULL") ORDER BY id
            """).rows.compactMap(Hold.init(row:))
    }

    /// Runs `body` holding the removal lock (a session lock: across the transactions of a prune).
    /// Another removal waits for it; so does placing a hold.
    static func whileRemoving<T>(on connection: PostgresConnection, _ body: () throws -> T) throws -> T {
        try connection.execute("SELECT pg_advisory_lock(\(removalLock))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(removalLock))") }
        return try body()
    }

    /// Waits for holds being placed and blocks new ones until the caller's transaction ends.
    static func lockForRemoval(on connection: PostgresConnection) throws {
        try connection.execute("LOCK TABLE tenant_legal_hold IN SHARE MODE")
    }

    /// The holds in place that cover rows of `table` (one month, attached or detached):
    /// a hold of a tenant with at least one row there inside the hold's range.
    static func holding(_ table: String, on connection: PostgresConnection) throws -> [Hold] {
        try connection.execute("""
            SELECT \(Hold.columns) FROM tenant_legal_hold h
            WHERE h.released_at IS NULL AND EXISTS (
                SELECT FROM \(PostgresConnection.quoteIdentifier(table)) r
                WHERE r.tenant_id = h.tenant_id
                  AND r."timestamp" >= coalesce(h.events_from, '-infinity') AND r."timestamp" < coalesce(h.events_until, 'infinity'))
            ORDER BY h.id
            """).rows.compactMap(Hold.init(row:))
    }

    /// Runs `body` (placing a hold), turning PostgreSQL's refusals into errors naming the option or what to do.
    private static func explainingRefusals<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PostgresError where error.sqlState == "22007" || error.sqlState == "22008" {
            throw OperationsError("--from/--until: \(error.message) (give times like 2026-01-31 or 2026-01-31T12:00:00Z)")
        } catch let error as PostgresError where error.sqlState == "23514" {
            throw OperationsError("--from must be before --until")
        } catch let error as PostgresError where error.sqlState == "55P03" || error.sqlState == "57014" {
            throw OperationsError("a prune or a retention run is removing events now; place the hold again once it has finished")
        }
    }
}
