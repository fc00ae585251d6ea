import AuditRead
import Postgres

/// Each (destination, tenant)'s last delivered event (`stream_cursor`), moved after a delivery
/// succeeds: a crash between the two sends that batch again (at least once), never skips it.
enum StreamCursors {
    /// Where the tenant's next page starts: its cursor, else just before the destination's start
    /// transaction, else nil (the first event).
    static func position(of destination: StreamDestination, tenant: String, on connection: PostgresConnection) throws -> EventCursor? {
        let row = try connection.query("""
            SELECT after_xid::text, after_id::text, after_timestamp::text FROM stream_cursor
            WHERE destination_id = $1::uuid AND tenant_id = $2::uuid
            """, [destination.id, tenant]).rows.first
        if let row, let xid = row[0], let id = row[1], let timestamp = row[2] {
            return EventCursor(listing: .feed, tenantID: tenant, key: [xid, id, timestamp])
        }
        guard let start = destination.startXID, start > 0 else { return nil }
        // Below every row of the start transaction: (start - 1, the greatest id, the end of time).
        return EventCursor(listing: .feed, tenantID: tenant, key: [String(start - 1), "ffffffff-ffff-ffff-ffff-ffffffffffff", "infinity"])
    }

    /// Moves the cursor after a delivery of `delivered` events; a page that was not full drained the tenant.
    static func advance(_ destination: StreamDestination, to position: EventCursor, delivered: Int, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO stream_cursor (destination_id, tenant_id, after_xid, after_id, after_timestamp, delivered, drained)
            VALUES ($1::uuid, $2::uuid, $3::xid8, $4::uuid, $5::timestamptz, $6::bigint, $7::boolean)
            ON CONFLICT (destination_id, tenant_id) DO UPDATE
            SET after_xid = excluded.after_xid, after_id = excluded.after_id, after_timestamp = excluded.after_timestamp,
                delivered = stream_cursor.delivered + excluded.delivered, delivered_at = now(), drained = excluded.drained
            """, [destination.id, position.tenantID, position.key[0], position.key[1], position.key[2], String(delivered),
                  delivered < destination.batchSize ? "true" : "false"])
    }

    /// The tenants that may have events after their cursor (`stream_pending_tenants`, 0024).
    static func pendingTenants(of destination: StreamDestination, on connection: PostgresConnection) throws -> [String] {
        try connection.query("SELECT t::text FROM stream_pending_tenants($1::uuid) t ORDER BY 1", [destination.id]).rows.compactMap { $0[0] }
    }
}
