import Foundation
import Postgres
import TestSupport

/// A migrated database with three tenants (A and B with events, C without) and helpers to add
/// events, for the read side's tests.
struct ReadFixture {
    static let tenantA = "0000000a-0000-4000-8000-000000000000"
    static let tenantB = "0000000b-0000-4000-8000-000000000000"
    static let tenantC = "0000000c-0000-4000-8000-000000000000"
    static let unknownTenant = "0000000f-0000-4000-8000-000000000000"
    static let adminToken = "admin-token-for-read-tests"

    struct Event {
        var id = UUID().uuidString.lowercased()
        var tenant = ReadFixture.tenantA
        var user: String? = nil
        var action = "user.login"
        var resourceType: String? = nil
        var resourceID: String? = nil
        var severity = "INFO"
        var timestamp = "2026-03-10T08:00:00Z"
        var metadata: String? = nil
    }

    let url: String
    let owner: PostgresConnection

    init(prefix: String = "read") throws {
        url = try TestDatabase.createMigrated(prefix: prefix)
        owner = try PostgresConnection(url)
        try owner.execute("""
            SET audit.scope = 'system';
            INSERT INTO tenant (id, name, code) VALUES ('\(Self.tenantA)', 'Acme', 'acme'), ('\(Self.tenantB)', 'Bolt', 'bolt'),
                ('\(Self.tenantC)', 'Calm', 'calm');
            RESET audit.scope;
            """)
        for month in 1...12 { try owner.execute("SELECT ensure_month_partitions('2026-\(String(format: "%02d", month))-01')") }
    }

    /// Inserts `events` in one transaction (so they share one ingest_xid).
    func insert(_ events: [Event]) throws {
        try owner.transaction { connection in
            for event in events { try Self.insert(event, on: connection) }
        }
    }

    /// Inserts one event in `connection`'s current transaction. Its first write announces the
    /// writer to the feed (`LOCK TABLE feed_writer`) as every writer of audit_log must.
    static func insert(_ event: Event, on connection: PostgresConnection) throws {
        try connection.execute("LOCK TABLE feed_writer IN ROW EXCLUSIVE MODE")
        try connection.query("""
            INSERT INTO audit_log (id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", custom_metadata)
            VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8::timestamptz, $9::jsonb)
            """, [event.id, event.tenant, event.user, event.action, event.resourceType, event.resourceID,
                  event.severity, event.timestamp, event.metadata])
        try connection.query("SELECT record_feed_months($1::timestamptz, $1::timestamptz + interval '1 microsecond')", [event.timestamp])
    }

    /// `count` events of `tenant` spread over 2026 (one every `spacingMinutes`), in one statement.
    func insertSeries(tenant: String, count: Int, spacingMinutes: Int = 7) throws {
        try owner.execute("""
            INSERT INTO audit_log (id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address,
                                   user_agent, custom_metadata)
            SELECT gen_random_uuid(), '\(tenant)', gen_random_uuid(), 'action.' || (i % 5), 'doc', 'doc-' || i,
                   (ARRAY['DEBUG','INFO','WARNING','ERROR','CRITICAL'])[1 + i % 5],
                   timestamptz '2026-01-01 00:00+00' + (i * \(spacingMinutes)) * interval '1 minute', '10.0.0.1', 'test/1.0',
                   jsonb_build_object('n', i, 'note', E'line\\nbreak, "quoted"')
            FROM generate_series(1, \(count)) i;
            SELECT record_feed_months('-infinity', 'infinity')
            """)
    }

    func startServer() throws -> AdminServerProcess {
        try AdminServerProcess.start(databaseURL: url, token: Self.adminToken)
    }

    /// `audit-ingest ARGS --database-url URL`.
    func cli(_ arguments: [String]) throws -> Shell.Result {
        try Shell.run(Shell.executable(named: "audit-ingest"), arguments + ["--database-url", url])
    }

    /// A new tenant token, through the CLI (stdout holds only the token).
    func createToken(tenant: String, name: String = "test") throws -> String {
        let result = try cli(["tenant", "token", "create", "--tenant", tenant, "--name", name])
        guard result.exitCode == 0, let token = result.output.split(separator: "\n").last(where: { $0.hasPrefix("ait_") }) else {
            throw TestDatabase.Unavailable(description: "tenant token create failed: \(result.output)")
        }
        return String(token)
    }
}

extension AdminServerProcess.Reply {
    /// The `events` of a listing as objects.
    var events: [[String: Any]] { json?["events"] as? [[String: Any]] ?? [] }
    var ids: [String] { events.compactMap { $0["id"] as? String } }
    var nextCursor: String? { json?["next_cursor"] as? String }
}

/// Percent-encodes a query value.
func q(_ value: String) -> String {
    value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))!
}
