import Foundation
import Operations
import Postgres
import TestSupport
import Testing

/// The rollup in batches of tenants (one transaction each, so 100k tenants finish within the
/// statement timeout): every tenant exactly once, the same figures as one big batch.
@Suite(.timeLimit(.minutes(5))) struct RollupBatchTests {
    @Test func smallBatchesGiveTheSameRowsAsOne() throws {
        let connection = try PostgresConnection(try TestDatabase.createMigrated(prefix: "rollup"))
        try connection.execute("""
            INSERT INTO tenant (name, code) SELECT 'Tenant ' || i, 't' || i FROM generate_series(1, 7) i;
            INSERT INTO "user" (tenant_id, email, created_at)
                SELECT t.id, 'u' || i || '@x.test', '2026-03-01' FROM tenant t, generate_series(1, 3) i WHERE t.code <> 't7';
            SELECT ensure_month_partitions('2026-03-01');
            INSERT INTO audit_log (id, tenant_id, user_id, action, severity, "timestamp")
                SELECT gen_random_uuid(), u.tenant_id, u.id, 'login', 'INFO', '2026-03-10 10:00+00' FROM "user" u;
            INSERT INTO tenant_metrics (tenant_id, "date", audit_log_count)
                SELECT tenant_id, '2026-03-10', count(*) FROM audit_log GROUP BY 1;
            """)
        let figures = """
            SELECT tenant_id, user_count, item_count, active_users, audit_log_count, storage_used_mb
            FROM tenant_metrics WHERE "date" = '2026-03-10' ORDER BY tenant_id
            """
        #expect(try MetricsRollup.run(day: "2026-03-10", batchSize: 2, on: connection) == 7)
        let batched = try connection.execute(figures).rows
        #expect(batched.count == 7)
        #expect(batched.filter { $0[1] == "3" && $0[3] == "3" && $0[4] == "3" }.count == 6)
        #expect(try MetricsRollup.run(day: "2026-03-10", batchSize: 1000, on: connection) == 7)
        #expect(try connection.execute(figures).rows == batched)
    }
}
