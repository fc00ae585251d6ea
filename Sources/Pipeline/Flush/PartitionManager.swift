import AuditCore
import Logging
import Postgres
import Synchronization

/// Creates the monthly partitions of `audit_log` and `tenant_metrics` the moment a month first
/// appears (DESIGN invariant 4).
///
/// Creation runs in its own short transaction, outside any flush, through the schema's
/// `ensure_month_partitions` (schemas/migrations/0005): advisory lock, re-check, CREATE + ATTACH,
/// which does not wait for (or block) other shards' COPYs. There is never a DEFAULT partition.
///
/// Thread-safe: flushers share one manager.
package final class PartitionManager: Sendable {
    /// The partitioned tables kept in step, by month.
    package static let parents = ["audit_log", "tenant_metrics"]
    private let known = Mutex<Set<Month>>([])
    private let createdCount = Atomic<Int>(0)
    private let logger: Logger

    package init(logger: Logger = Logger(label: "audit-ingest.partitions")) {
        self.logger = logger
    }

    /// Partitions created by this process.
    package var created: Int { createdCount.load(ordering: .relaxed) }

    /// Reads which months exist (for both parents) from the catalog.
    package func refresh(on connection: PostgresConnection) throws {
        let rows = try connection.execute("""
            SELECT substr(c.relname, length(p.relname) + 2) AS suffix, count(*)
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname IN ('audit_log', 'tenant_metrics') AND p.relnamespace = 'public'::regnamespace
            GROUP BY 1
            """).rows
        let months = rows.compactMap { row -> Month? in
            guard row[1] == "\(Self.parents.count)" else { return nil }  // complete only when both exist
            return row[0].flatMap(Month.init)
        }
        known.withLock { $0 = Set(months) }
    }

    /// Ensures every month in `months` exists for both parents. Must be called outside a
    /// transaction. Returns the partitions created.
    @discardableResult
    package func ensure(_ months: some Sequence<Month>, on connection: PostgresConnection) throws -> Int {
        let missing = known.withLock { known in months.filter { !known.contains($0) } }
        var created = 0
        for month in Set(missing).sorted() {
            created += try create(month, on: connection)
            known.withLock { _ = $0.insert(month) }
        }
        return created
    }

    /// Forgets what is known, so the next `ensure` checks the catalog again (after a 23514).
    package func invalidate(_ month: Month) {
        known.withLock { _ = $0.remove(month) }
    }

    /// Creates the month's partitions through the schema's `ensure_month_partitions` (advisory
    /// lock, re-check, CREATE + ATTACH), in a transaction of its own.
    private func create(_ month: Month, on connection: PostgresConnection) throws -> Int {
        let created = try connection.transaction { connection in
            Int(try connection.query("SELECT ensure_month_partitions($1::date)", [month.firstDayISO]).scalar ?? "0") ?? 0
        }
        if created > 0 {
            createdCount.add(created, ordering: .relaxed)
            logger.info("created partitions", metadata: [LogKey.month: "\(month)", LogKey.count: "\(created)"])
        }
        return created
    }
}
