import AuditCore
import Logging
import Postgres
import Synchronization

/// Creates the monthly partitions of `audit_log` and `tenant_metrics` the moment a month first
/// appears (DESIGN invariant 4).
///
/// Creation runs in its own short transaction, outside any flush: it takes an advisory lock,
/// re-checks the catalog, creates the month as a plain table and ATTACHes it. ATTACH takes only
/// SHARE UPDATE EXCLUSIVE on the parent, which does not wait for (or block) other shards' COPYs.
/// There is never a DEFAULT partition.
///
/// Thread-safe: flushers share one manager.
public final class PartitionManager: Sendable {
    /// The partitioned tables kept in step, by month.
    public static let parents = ["audit_log", "tenant_metrics"]
    /// Advisory lock key serialising partition creation ("auditprt").
    static let advisoryLockKey: Int64 = 0x6175_6469_7470_7274

    private let known = Mutex<Set<Month>>([])
    private let createdCount = Atomic<Int>(0)
    private let logger: Logger

    public init(logger: Logger = Logger(label: "audit-ingest.partitions")) {
        self.logger = logger
    }

    /// Partitions created by this process.
    public var created: Int { createdCount.load(ordering: .relaxed) }

    /// Reads which months exist (for both parents) from the catalog.
    public func refresh(on connection: PostgresConnection) throws {
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
    public func ensure(_ months: some Sequence<Month>, on connection: PostgresConnection) throws -> Int {
        let missing = known.withLock { known in months.filter { !known.contains($0) } }
        var created = 0
        for month in Set(missing).sorted() {
            created += try create(month, on: connection)
            known.withLock { _ = $0.insert(month) }
        }
        return created
    }

    /// Forgets what is known, so the next `ensure` checks the catalog again (after a 23514).
    public func invalidate(_ month: Month) {
        known.withLock { _ = $0.remove(month) }
    }

    private func create(_ month: Month, on connection: PostgresConnection) throws -> Int {
        let lower = month.firstDayISO
        let upper = month.next.firstDayISO
        return try connection.transaction { connection -> Int in
            try connection.execute("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))")
            var created = 0
            for parent in Self.parents {
                let name = "\(parent)_\(month.partitionSuffix)"
                // Re-checked under the lock: another shard or process may have just made it.
                guard try connection.query("SELECT to_regclass($1) IS NULL", [name]).scalar == "t" else { continue }
                let key = parent == "audit_log" ? "\"timestamp\"" : "\"date\""
                let (low, high) = parent == "audit_log"
                    ? ("'\(lower) 00:00:00+00'::timestamptz", "'\(upper) 00:00:00+00'::timestamptz")
                    : ("'\(lower)'::date", "'\(upper)'::date")
                // The CHECK matching the bounds lets ATTACH skip its validation scan.
                try connection.execute("""
                    CREATE TABLE \(name) (LIKE \(parent) INCLUDING DEFAULTS INCLUDING STORAGE,
                        CONSTRAINT \(name)_bounds CHECK (\(key) >= \(low) AND \(key) < \(high)));
                    ALTER TABLE \(parent) ATTACH PARTITION \(name) FOR VALUES FROM (\(low)) TO (\(high));
                    """)
                created += 1
                createdCount.add(1, ordering: .relaxed)
                logger.info("created partition", metadata: ["partition": "\(name)"])
            }
            return created
        }
    }
}
