import Foundation
import Operations
import Postgres
import TestSupport
import Testing

/// `vacuum` / `reindex` on large tables: no statement timeout, and no INVALID `*_ccnew` index
/// left behind when REINDEX CONCURRENTLY is interrupted.
@Suite(.serialized, .timeLimit(.minutes(2))) struct MaintenanceTests {
    func database() throws -> (url: String, connection: PostgresConnection) {
        let url = try TestDatabase.createMigrated(prefix: "maintenance")
        let connection = try PostgresConnection(url)
        try connection.execute("""
            SELECT ensure_month_partitions('2026-03-01');
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            SELECT gen_random_uuid(), gen_random_uuid(), 'a', 'INFO', '2026-03-10' FROM generate_series(1, 100);
            """)
        return (url, connection)
    }

    /// Polls `sql` on `connection` until it returns "t" (or `seconds` pass).
    func waitUntil(_ sql: String, on connection: PostgresConnection, seconds: Double = 30) throws -> Bool {
        TestSupport.waitUntil(timeout: .milliseconds(Int(seconds * 1000)), interval: .milliseconds(10)) {
            try connection.execute(sql).scalar == "t"
        }
    }

    @Test func interruptedReindexLeavesNoInvalidIndex() throws {
        let (url, connection) = try database()
        let blocker = try PostgresConnection(url)  // an open writer: REINDEX CONCURRENTLY waits for it
        try blocker.execute("BEGIN; INSERT INTO audit_log_2026_03 (id, tenant_id, action, severity, \"timestamp\") VALUES (gen_random_uuid(), gen_random_uuid(), 'b', 'INFO', '2026-03-11')")
        let reindex = try Shell.spawn(Shell.executable(named: "audit-ingest"), ["reindex", "--table", "audit_log_2026_03", "--database-url", url])
        #expect(try waitUntil("""
            SELECT EXISTS (SELECT FROM pg_class WHERE relname LIKE 'audit_log_2026_03%_ccnew%')
               AND EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'REINDEX%' AND wait_event_type = 'Lock')
            """, on: connection), "REINDEX never got to building its new indexes")
        try connection.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'REINDEX%' AND pid <> pg_backend_pid()")
        try blocker.execute("ROLLBACK")  // the clean-up's DROP INDEX CONCURRENTLY waits for it too
        let result = reindex.wait(timeout: 60)
        #expect(result.exitCode != 0, "\(result.output)")
        #expect(result.output.contains("canceling statement"), "\(result.output)")
        let invalid = try connection.execute("SELECT string_agg(indexrelid::regclass::text, ',') FROM pg_index WHERE NOT indisvalid").scalar
        #expect(invalid == nil, "INVALID indexes left: \(invalid ?? "")")
    }

    @Test func reindexOutlastsTheSessionStatementTimeout() throws {
        let (url, connection) = try database()
        let blocker = try PostgresConnection(url)
        try blocker.execute("BEGIN; INSERT INTO audit_log_2026_03 (id, tenant_id, action, severity, \"timestamp\") VALUES (gen_random_uuid(), gen_random_uuid(), 'b', 'INFO', '2026-03-11')")
        let reindex = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                      ["reindex", "--table", "audit_log_2026_03", "--statement-timeout", "1", "--database-url", url])
        // Held until the REINDEX has waited longer than its session's 1 s statement timeout.
        #expect(try waitUntil("""
            SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'REINDEX%' AND now() - query_start > interval '1.5 s')
            """, on: connection))
        try blocker.execute("COMMIT")
        let result = reindex.wait(timeout: 60)
        #expect(result.exitCode == 0, "\(result.output)")
    }
}
