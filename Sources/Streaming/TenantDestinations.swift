import Foundation
import Postgres

/// A tenant's destinations as its token manages them (`/v1/tenants/{id}/stream/destinations`).
///
/// Every call runs in a transaction of its own that acts for the tenant (`app.tenant_id` for that
/// transaction only) through the functions of migration 0025, which see and change only that
/// tenant's destinations. A tenant changes only those it made (`managed_by = 'tenant'`); those
/// its operator made for it are listed, and refused as `operatorManaged`.
public enum TenantDestinations {
    /// At most this many destinations per tenant (the functions refuse more).
    public static let limit = 20
    static let lockTimeoutSeconds = 5
    static let statementTimeoutSeconds = 15

    public struct Listed: Sendable {
        public var destination: StreamDestination
        public var delivered: Int
        public var lastDelivery: String?

        public init(destination: StreamDestination, delivered: Int, lastDelivery: String?) {
            self.destination = destination
            self.delivered = delivered
            self.lastDelivery = lastDelivery
        }
    }

    public enum Change: Sendable, Equatable {
        case done
        /// Not a destination of this tenant (another tenant's is as unknown as a missing one).
        case notFound
        /// Made by the operator: the tenant may see it, not change it.
        case operatorManaged
    }

    public static func list(tenant: String, on connection: PostgresConnection) throws -> [Listed] {
        try acting(for: tenant, on: connection) { connection in
            try connection.query("""
                SELECT id::text, name, $1::text, kind, url, secret_ref, batch_size::text, fail_after_seconds::text,
                       start_xid::text, state, state_reason, managed_by, encode(secret_sealed, 'base64'), secret_key_id,
                       NULL, NULL, delivered::text, last_delivery::text
                FROM tenant_stream_destinations()
                """, [tenant]).rows.compactMap { row in
                // A tenant's destinations are never files: no rotation settings.
                StreamDestination(row: Array(row.prefix(16))).map {
                    Listed(destination: $0, delivered: row[16].flatMap { Int($0) } ?? 0, lastDelivery: row[17])
                }
            }
        }
    }

    public static func find(_ id: String, tenant: String, on connection: PostgresConnection) throws -> Listed? {
        try list(tenant: tenant, on: connection).first { $0.destination.id == id.lowercased() }
    }

    /// Creates it with its secret sealed under `key` (bound to its new id); returns it.
    public static func create(_ new: StreamDestinations.New, secret: [UInt8]?, key: SealedSecret.Key,
                              on connection: PostgresConnection) throws -> StreamDestination {
        guard let tenant = new.tenantID else { throw PostgresError(code: .unexpectedResult, message: "a tenant's destination needs its tenant") }
        let id = UUID().uuidString.lowercased()
        let sealed = try secret.map { try SealedSecret.seal($0, destinationID: id, with: key) }
        try acting(for: tenant, on: connection) { connection in
            try connection.query("""
                SELECT tenant_stream_destination_create($1::uuid, $2, $3, $4, decode($5, 'base64'), $6, $7::integer, $8::bigint, $9::boolean)
                """, [id, new.name, new.kind.rawValue, new.url, sealed.map { Data($0).base64EncodedString() }, sealed.map { _ in key.id },
                      String(new.batchSize), String(new.failAfter.components.seconds), new.fromNow ? "true" : "false"])
        }
        guard let created = try find(id, tenant: tenant, on: connection)?.destination else {
            throw PostgresError(code: .unexpectedResult, message: "stream_destination: the new destination is not listed")
        }
        return created
    }

    /// Pause (after the batch in flight) or resume from the cursor.
    public static func setState(_ state: StreamDestination.State, id: String, tenant: String, on connection: PostgresConnection) throws -> Change {
        try change("tenant_stream_destination_set_state($1::uuid, $2)", [id, state.rawValue], tenant: tenant, on: connection)
    }

    /// Every event ingested at or after `since` (microseconds since 1970; nil: every stored
    /// event) is delivered again, with the same ids.
    public static func rewind(id: String, since: Int64?, tenant: String, on connection: PostgresConnection) throws -> Change {
        try change("tenant_stream_destination_rewind($1::uuid, to_timestamp($2::bigint / 1e6))", [id, since.map { String($0) }],
                   tenant: tenant, on: connection)
    }

    public static func delete(id: String, tenant: String, on connection: PostgresConnection) throws -> Change {
        try change("tenant_stream_destination_delete($1::uuid)", [id], tenant: tenant, on: connection)
    }

    private static func change(_ call: String, _ parameters: [String?], tenant: String, on connection: PostgresConnection) throws -> Change {
        let managed = try acting(for: tenant, on: connection) { try $0.query("SELECT " + call, parameters).scalar }
        switch managed {
        case "tenant": return .done
        case "operator": return .operatorManaged
        default: return .notFound
        }
    }

    /// `body` in a transaction acting for `tenant`; the connection's settings come back after it.
    /// A batch in flight is waited for at most `lockTimeoutSeconds` (then SQLSTATE 55P03), and no
    /// statement runs longer than `statementTimeoutSeconds`: a slow receiver or a large rewind
    /// holds the read API's connection no longer than that.
    private static func acting<T>(for tenant: String, on connection: PostgresConnection, _ body: (PostgresConnection) throws -> T) throws -> T {
        try connection.transaction { connection in
            try connection.execute("""
                SET LOCAL standard_conforming_strings = on; SET LOCAL lock_timeout = '\(lockTimeoutSeconds)s';
                SET LOCAL statement_timeout = '\(statementTimeoutSeconds)s'
                """)
            try connection.query("SELECT set_config('app.tenant_id', $1, true)", [tenant])
            return try body(connection)
        }
    }
}
