import AuditRead
import Postgres

/// How far each destination is behind the feed: events final in the feed and not yet delivered
/// (counted up to `countLimit` per tenant), and the age of the oldest of them (now minus its
/// `ingested_at`). Read from the database, so any admin server shows it, wherever the streamer runs.
public struct StreamLag: Sendable, Equatable {
    public var destination: String
    /// The destination's tenant, or "all".
    public var tenant: String
    public var state: StreamDestination.State
    public var events: Int
    public var seconds: Double

    /// Events counted per (destination, tenant); a longer backlog shows as this many.
    public static let countLimit = 100_000

    public static func read(on connection: PostgresConnection) throws -> [StreamLag] {
        try StreamDestinations.all(on: connection).map { destination in
            var lag = StreamLag(destination: destination.name, tenant: destination.tenantID ?? "all", state: destination.state,
                                events: 0, seconds: 0)
            for tenant in try StreamCursors.pendingTenants(of: destination, on: connection) {
                let feed = EventFeed(tenantID: tenant, after: try StreamCursors.position(of: destination, tenant: tenant, on: connection),
                                     limit: countLimit)
                let row = try ReaderSession.run(tenantID: tenant, on: connection) { connection -> [String?]? in
                    guard let statement = try feed.statement(on: connection) else { return nil }
                    return try connection.query("""
                        SELECT count(*)::text, coalesce(extract(epoch FROM now() - min(ingested_at::timestamptz)), 0)::text
                        FROM (\(statement.sql)) pending
                        """, statement.parameters).rows.first
                }
                lag.events += row?[0].flatMap { Int($0) } ?? 0
                lag.seconds = max(lag.seconds, row?[1].flatMap { Double($0) } ?? 0)
            }
            return lag
        }
    }
}
