import AuditRead
import Foundation
import Postgres
import TestSupport
import Testing

/// The plans of the read API's searches as the API runs them (as `audit_reader`, under row-level
/// security) on a table of three tenants with 20,000 events each: a cheaper index set must never
/// turn a search into a scan of every tenant's rows. A and B have every action and severity in
/// turn; C is a quiet trail (INFO, with a few warnings and a few exports), where a filter for the
/// rare ones must not read the rest.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SearchPlanTests {
    private let fixture: ReadFixture

    init() throws {
        fixture = try ReadFixture(prefix: "plans")
        for tenant in [ReadFixture.tenantA, ReadFixture.tenantB] {
            try fixture.insertSeries(tenant: tenant, count: 20_000, spacingMinutes: 25)
        }
        try fixture.owner.execute("""
            INSERT INTO audit_log (id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address,
                                   user_agent, custom_metadata)
            SELECT gen_random_uuid(), '\(ReadFixture.tenantC)', gen_random_uuid(),
                   CASE WHEN i % 5000 = 17 THEN 'tenant.exported' ELSE 'action.' || (i % 5) END, 'doc', 'doc-' || i,
                   CASE WHEN i % 4000 = 9 THEN 'WARNING' ELSE 'INFO' END,
                   timestamptz '2026-01-01 00:00+00' + (i * 25) * interval '1 minute', '10.0.0.1', 'test/1.0', jsonb_build_object('n', i)
            FROM generate_series(1, 20000) i;
            SELECT record_feed_months('-infinity', 'infinity');
            ANALYZE audit_log
            """)
    }

    /// EXPLAIN of exactly the query `GET /v1/tenants/{tenant}/events` runs for `parameters`.
    private func plan(_ parameters: [String: String], tenant: String = ReadFixture.tenantA) throws -> [String] {
        let connection = try PostgresConnection(fixture.url)
        let signer = try CursorSigner.load(on: connection)
        let search = try EventSearch(tenantID: tenant, parameters: parameters, signer: signer)
        return try ReaderSession.run(tenantID: tenant, on: connection) { reader in
            let (sql, bound) = search.statement()
            return try reader.query("EXPLAIN " + sql, bound).rows.compactMap { $0[0] }
        }
    }

    /// The months' copies of the partitioned index `parent`.
    private func monthIndexes(of parent: String) throws -> Set<String> {
        Set(try fixture.owner.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass
            """, [parent]).rows.compactMap { $0[0] })
    }

    /// Every month is read through an index whose condition starts with the tenant.
    private func readsOnlyTheTenantThroughIndexes(_ plan: [String], tenant: String = ReadFixture.tenantA) {
        let text = plan.joined(separator: "\n")
        #expect(!text.contains("Seq Scan") && !text.contains("Bitmap Heap Scan on audit_log"), "\(text)")
        let conditions = plan.filter { $0.contains("Index Cond:") }
        #expect(!conditions.isEmpty && conditions.allSatisfy { $0.contains("(tenant_id = '\(tenant)'::uuid)") }, "\(text)")
    }

    private func scannedIndexes(_ plan: [String]) -> Set<String> {
        Set(plan.compactMap { line in
            guard let range = line.range(of: "Index Scan Backward using ") ?? line.range(of: "Index Scan using ") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != " " })
        })
    }

    /// Since 0017 the primary key, (tenant_id, "timestamp", id), is the tenant's time index.
    @Test func theNewestPageWalksTheTenantsTimeIndexInEveryMonth() throws {
        let plan = try plan([:])
        readsOnlyTheTenantThroughIndexes(plan)
        let timeIndexes = try monthIndexes(of: "audit_log_pkey")
        #expect(scannedIndexes(plan).isSubset(of: timeIndexes), "\(plan)")
        #expect(scannedIndexes(plan).count == 12, "one per month of 2026: \(plan)")
    }

    @Test func aTimeRangeReadsOnlyItsMonth() throws {
        let plan = try plan(["since": "2026-06-01T00:00:00Z", "until": "2026-06-08T00:00:00Z"])
        readsOnlyTheTenantThroughIndexes(plan)
        #expect(scannedIndexes(plan) == ["audit_log_2026_06_pkey"], "\(plan)")
        #expect(plan.contains { $0.contains("Index Cond:") && $0.contains(#""timestamp" >= '2026-06-01"#) }, "\(plan)")
    }

    @Test func aHighSeveritySearchUsesThePartialIndex() throws {
        let plan = try plan(["severity": "CRITICAL"])
        readsOnlyTheTenantThroughIndexes(plan)
        let partialIndexes = try monthIndexes(of: "idx_audit_high_severity")
        #expect(!scannedIndexes(plan).isEmpty && scannedIndexes(plan).isSubset(of: partialIndexes), "\(plan)")
    }

    /// On a quiet trail a minimum of WARNING matches a few events in 20,000: since 0032 the
    /// partial index holds WARNING and above, in time order, so the page reads only those.
    @Test func aRareMinimumSeverityReadsOnlyItsEvents() throws {
        let plan = try plan(["severity": "WARNING"], tenant: ReadFixture.tenantC)
        readsOnlyTheTenantThroughIndexes(plan, tenant: ReadFixture.tenantC)
        let partialIndexes = try monthIndexes(of: "idx_audit_high_severity")
        #expect(!scannedIndexes(plan).isEmpty && scannedIndexes(plan).isSubset(of: partialIndexes), "\(plan)")
    }

    /// A rare action is found through the (tenant_id, action) composite, not by walking the
    /// tenant's time order past every other event.
    @Test func aRareActionUsesTheActionIndex() throws {
        let plan = try plan(["action": "tenant.exported"], tenant: ReadFixture.tenantC)
        readsOnlyTheTenantThroughIndexes(plan, tenant: ReadFixture.tenantC)
        let actionIndexes = try monthIndexes(of: "idx_audit_tenant_action")
        #expect(!scannedIndexes(plan).isEmpty && scannedIndexes(plan).isSubset(of: actionIndexes), "\(plan)")
    }

    /// `@>` (jsonb_contains) is not leakproof, so under row-level security PostgreSQL evaluates it
    /// only on rows the policy lets through: no GIN index serves the API's metadata filter. The
    /// search reads the tenant's rows in time order and filters them, which keeps it to the tenant
    /// (and to the months of `since`/`until`). The GIN index serves operators' queries as the owner.
    @Test func aMetadataSearchFiltersTheTenantsRowsInTimeOrder() throws {
        let plan = try plan(["metadata": #"{"n": 77}"#])
        readsOnlyTheTenantThroughIndexes(plan)
        let timeIndexes = try monthIndexes(of: "audit_log_pkey")
        #expect(scannedIndexes(plan).isSubset(of: timeIndexes), "\(plan)")
        #expect(plan.contains { $0.contains("Filter: (custom_metadata @> ") }, "\(plan)")
        let leakproof = try fixture.owner.execute("SELECT proleakproof FROM pg_proc WHERE proname = 'jsonb_contains'").scalar
        #expect(leakproof == "f")
    }

    /// The owner (an operator in psql) is not bound by the policy: the same containment search is
    /// served by the metadata index, jsonb_path_ops since 0016.
    @Test func theOwnersMetadataSearchUsesTheMetadataIndex() throws {
        let plan = try fixture.owner.execute("""
            EXPLAIN SELECT id FROM audit_log
            WHERE tenant_id = '\(ReadFixture.tenantA)' AND custom_metadata @> '{"n": 77}'
            """).rows.compactMap { $0[0] }
        let used = Set(plan.compactMap { line -> String? in
            guard let range = line.range(of: "Bitmap Index Scan on ") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != " " })
        })
        let metadataIndexes = try monthIndexes(of: "idx_audit_metadata_search")
        #expect(!used.isDisjoint(with: metadataIndexes), "\(plan.joined(separator: "\n"))")
    }
}
