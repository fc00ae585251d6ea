import AuditCore
import Evidence
import Foundation
import Postgres

/// `partitions list | ensure | prune`: month partitions of audit_log and tenant_metrics.
public enum Partitions {
    public struct Info: Codable, Sendable {
        public var parent: String
        public var name: String
        public var bounds: String
        public var rowEstimate: Int64
        public var totalBytes: Int64
    }

    public static func list(on connection: PostgresConnection) throws -> [Info] {
        try connection.execute("""
            SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint,
                   pg_total_relation_size(c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname IN ('audit_log', 'tenant_metrics') AND p.relnamespace = 'public'::regnamespace
            ORDER BY p.relname, c.relname
            """).rows.map {
                Info(parent: $0[0]!, name: $0[1]!, bounds: $0[2] ?? "", rowEstimate: Int64($0[3]!) ?? 0, totalBytes: Int64($0[4]!) ?? 0)
            }
    }

    /// The most months `ensure` makes ahead: each month is two tables (and their indexes) that
    /// every later partition-wide operation pays for. Default: 24.
    public static let maxMonthsAhead = 24

    /// Makes the current month and `monthsAhead` following ones (for both parents). Returns the
    /// partitions created. Throws `OperationsError` when `monthsAhead` is outside 0...`maxMonthsAhead`.
    public static func ensure(monthsAhead: Int, on connection: PostgresConnection) throws -> Int {
        try checkMonthsAhead(monthsAhead)
        var created = 0
        for ahead in 0...max(0, monthsAhead) {
            created += try connection.transaction { connection in
                Int(try connection.query(
                    "SELECT ensure_month_partitions((date_trunc('month', now() AT TIME ZONE 'UTC') + $1 * interval '1 month')::date)",
                    ["\(ahead)"]).scalar ?? "0") ?? 0
            }
        }
        return created
    }

    /// Throws `OperationsError` naming the allowed range unless 0 <= `monthsAhead` <= `maxMonthsAhead`.
    public static func checkMonthsAhead(_ monthsAhead: Int) throws {
        guard (0...maxMonthsAhead).contains(monthsAhead) else {
            throw OperationsError("premake must be between 0 and \(maxMonthsAhead) months, not \(monthsAhead)")
        }
    }

    public struct PruneResult: Codable, Sendable {
        /// The months dropped (`audit_log_YYYY_MM`), including ones an earlier prune had
        /// detached but not finished.
        public var dropped: [String]
        /// Archive files written, one per dropped partition (`COPY ... TO` as CSV with a header, gzip).
        public var archives: [String]
        /// Row count and SHA-256 of each archive (also in `FILE.manifest.json` and `FILE.sha256`).
        public var archived: [PartitionArchive]
        /// The record of each month dropped, appended to the signed log by the next checkpoint.
        public var operations: [AttestedPrune]
        /// Months past the cutoff kept because a legal hold covers rows in them.
        public var kept: [HeldMonth]
        /// Each tenant's own retention, applied first (`tenant retention`).
        public var tenantRetention: TenantRetention.Result?
        public var dryRun: Bool
    }

    /// A month a prune kept: the holds that cover rows in it.
    public struct HeldMonth: Codable, Sendable {
        public var month: String
        /// The partition, or the detached table an earlier prune left (kept detached).
        public var table: String
        public var holds: [LegalHolds.Hold]
    }

    /// What the log records of one dropped month (migration 0021).
    public struct AttestedPrune: Codable, Sendable {
        /// audit_operation.id.
        public var operation: Int64
        public var month: String
        /// The (batch, tenant) groups of sealed rows the table held.
        public var groups: Int
        public var rows: Int64
    }

    /// Detaches and drops audit_log months that ended more than `olderThanMonths` months before the
    /// current month, after writing each to an archive in `archiveDirectory` when given (see
    /// `PartitionArchive`: never overwritten, fsynced, with row count and checksum).
    /// Restore an archive with: `gunzip -c FILE | psql -c "COPY audit_log FROM STDIN (FORMAT csv, HEADER)"`
    /// (after `SELECT ensure_month_partitions('YYYY-MM-01')`). tenant_metrics is kept: it is the
    /// history of what was stored.
    ///
    /// A month is detached and renamed `audit_log_YYYY_MM_detached` in one transaction (under
    /// the partition advisory lock), so a late event for it gets a fresh partition instead of
    /// failing; it is dropped only after its archive is durable. A prune that failed after
    /// detaching is finished by the next one, which looks for such tables first (and for months
    /// detached under their plain name by earlier versions).
    public static func prune(olderThanMonths: Int, archiveDirectory: String?, dryRun: Bool,
                             on connection: PostgresConnection) throws -> PruneResult {
        guard olderThanMonths >= 1 else { throw OperationsError("--older-than must be at least 1 month") }
        // From the first detach to the last drop: no hold is placed in between (LegalHolds).
        return try LegalHolds.whileRemoving(on: connection) {
            try pruneLocked(olderThanMonths: olderThanMonths, archiveDirectory: archiveDirectory, dryRun: dryRun, on: connection)
        }
    }

    private static func pruneLocked(olderThanMonths: Int, archiveDirectory: String?, dryRun: Bool,
                                    on connection: PostgresConnection) throws -> PruneResult {
        let cutoff = try connection.query(
            "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - $1 * interval '1 month', 'YYYY_MM')",
            ["\(olderThanMonths)"]).scalar!
        let attached = try list(on: connection)
            .filter { $0.parent == "audit_log" && String($0.name.dropFirst("audit_log_".count)) < cutoff }
            .map(\.name)
        let leftovers = try detachedLeftovers(olderThan: cutoff, on: connection)
        var result = PruneResult(dropped: [], archives: [], archived: [], operations: [], kept: [], dryRun: dryRun)
        // Months about to be dropped whole are left to the drop.
        result.tenantRetention = try TenantRetention.apply(dryRun: dryRun, skippingBefore: cutoff, on: connection)
        if dryRun {
            for (table, month) in leftovers.map({ ($0.table, $0.month) }) + attached.map({ ($0, $0) }) {
                let holds = try LegalHolds.holding(table, on: connection)
                if holds.isEmpty { result.dropped.append(month) } else { result.kept.append(HeldMonth(month: month, table: table, holds: holds)) }
            }
            return result
        }
        if let archiveDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: archiveDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw OperationsError("archive directory \(archiveDirectory) does not exist")
            }
        }
        var work = leftovers
        for name in attached {
            switch try detach(name, on: connection) {
            case .detached(let table): work.append((table: table, month: name))
            case .held(let holds): result.kept.append(HeldMonth(month: name, table: name, holds: holds))
            }
        }
        for (table, month) in work {
            // A hold placed since the detach (or since an earlier prune left the table) keeps it.
            let holds = try LegalHolds.holding(table, on: connection)
            guard holds.isEmpty else {
                result.kept.append(HeldMonth(month: month, table: table, holds: holds))
                continue
            }
            var archive: PartitionArchive?
            if let archiveDirectory {
                do {
                    archive = try PartitionArchive.write(table: table, month: month, directory: archiveDirectory, on: connection)
                } catch {
                    throw OperationsError("""
                        archiving \(month) failed (\(error)); it is kept, detached, as \(table): the next prune finishes it \
                        (late events for that month go to a new partition meanwhile)
                        """)
                }
            }
            guard let operation = try dropAttested(table: table, month: month, archive: archive, on: connection) else {
                result.kept.append(HeldMonth(month: month, table: table, holds: try LegalHolds.holding(table, on: connection)))
                continue
            }
            if let archive {
                result.archives.append(archive.file)
                result.archived.append(archive)
            }
            result.dropped.append(month)
            result.operations.append(operation)
        }
        return result
    }

    /// Detaches `name` and renames it `<name>_detached` (or `_detached_2`, ...) in one
    /// transaction under the lock `ensure_month_partitions` takes. Returns the new name.
    enum Detached {
        case detached(String)
        /// Kept attached: legal holds cover rows in it.
        case held([LegalHolds.Hold])
    }

    static func detach(_ name: String, on connection: PostgresConnection) throws -> Detached {
        try connection.transaction { connection in
            try connection.execute("SELECT pg_advisory_xact_lock(7022629598042026612)")  // ensure_month_partitions' lock
            try LegalHolds.lockForRemoval(on: connection)
            let holds = try LegalHolds.holding(name, on: connection)
            guard holds.isEmpty else { return .held(holds) }
            try connection.execute("ALTER TABLE audit_log DETACH PARTITION \(PostgresConnection.quoteIdentifier(name))")
            try checkIntegrated(name, on: connection)
            let renamed = try connection.query("""
                SELECT n FROM (SELECT $1 || '_detached' || CASE WHEN i = 1 THEN '' ELSE '_' || i END AS n, i
                               FROM generate_series(1, 1000) i) c
                WHERE to_regclass(quote_ident(n)) IS NULL ORDER BY i LIMIT 1
                """, [name]).scalar!
            try connection.execute("ALTER TABLE \(PostgresConnection.quoteIdentifier(name)) RENAME TO \(PostgresConnection.quoteIdentifier(renamed))")
            return .detached(renamed)
        }
    }

    /// Once a signed log has begun, a month is pruned only when every batch that stored rows in it
    /// is in the log: what was never checkpointed must not vanish unattested. Runs after DETACH,
    /// in its transaction, when no flush can add to the month any more; throws, undoing the
    /// detach, otherwise. Cheap: it looks at the batches not yet integrated, a few seconds' worth.
    static func checkIntegrated(_ name: String, on connection: PostgresConnection) throws {
        guard try connection.execute("SELECT EXISTS (SELECT FROM audit_checkpoint)").scalar == "t" else { return }
        let pending = try connection.query("""
            SELECT count(*), min(b.id) FROM audit_batch b
            WHERE b.log_index IS NULL
              AND EXISTS (SELECT FROM audit_batch_group g WHERE g.batch_id = b.id AND g.kind = 'R' AND g.month = to_date($1, 'YYYY_MM'))
            """, [String(name.dropFirst("audit_log_".count))]).rows.first
        guard let count = pending?[0].flatMap({ Int($0) }), count > 0 else { return }
        throw OperationsError("""
            \(name) holds rows of \(count) batches not yet in the signed log (the first: batch \(pending?[1] ?? "?")); \
            nothing was pruned: run `audit-ingest checkpoint --signing-key-file FILE` (or wait for the running integrator) \
            and prune again
            """)
    }

    /// Drops `table` (the detached `month`) and records the operation in one transaction: the
    /// table, the archive and every (batch, tenant) group of sealed rows it held, with the digest
    /// the integrator appends to the log (`LogOperation`). Reads the table once, for its groups.
    static func dropAttested(table: String, month: String, archive: PartitionArchive?,
                             on connection: PostgresConnection) throws -> AttestedPrune? {
        guard let sealedMonth = Month(String(month.dropFirst("audit_log_".count)).replacingOccurrences(of: "_", with: "-")) else {
            throw OperationsError("\(month) is not a month partition's name")
        }
        let quoted = PostgresConnection.quoteIdentifier(table)
        return try connection.transaction { connection in
            try LegalHolds.lockForRemoval(on: connection)
            guard try LegalHolds.holding(table, on: connection).isEmpty else { return nil }
            let groups = try connection.query("""
                SELECT g.batch_id, g.tenant_id, g.leaf_count, encode(g.subroot, 'hex')
                FROM audit_batch_group g
                JOIN (SELECT DISTINCT batch_id, tenant_id FROM \(quoted) WHERE batch_id <> 0) t
                  ON t.batch_id = g.batch_id AND t.tenant_id = g.tenant_id
                WHERE g.kind = 'R' AND g.month = $1::date
                """, [sealedMonth.firstDayISO]).rows.compactMap { row -> LogOperation.RemovedGroup? in
                guard let batch = row[0].flatMap({ Int64($0) }), let tenant = row[1].flatMap({ UUIDValue($0) }),
                      let count = row[2].flatMap({ Int64($0) }), let subroot = row[3].flatMap({ TreeHash(hex: $0) }) else { return nil }
                return LogOperation.RemovedGroup(batch: batch, tenantID: tenant, leafCount: count, subroot: subroot)
            }
            let operation = LogOperation(
                kind: .prune, month: sealedMonth, table: table, archiveFile: archive.map { ($0.file as NSString).lastPathComponent },
                archiveSHA256: archive?.sha256, archiveRows: archive.map { Int64($0.rows) },
                recordedAt: Int64(Date().timeIntervalSince1970), groups: groups)
            let id = try AttestedOperations.record(operation, on: connection)
            try connection.execute("DROP TABLE \(quoted)")
            // The feed no longer scans the month (migration 0023).
            _ = try connection.query("DELETE FROM tenant_feed_month WHERE month = $1::date", [sealedMonth.firstDayISO])
            _ = try connection.query("DELETE FROM feed_legacy_month WHERE month = $1::date", [sealedMonth.firstDayISO])
            return AttestedPrune(operation: id, month: month, groups: groups.count, rows: groups.reduce(0) { $0 + $1.leafCount })
        }
    }

    /// Tables an earlier prune detached and did not drop (`audit_log_YYYY_MM_detached...`, or
    /// plain `audit_log_YYYY_MM` tables that are not partitions) whose month ended before `cutoff`.
    static func detachedLeftovers(olderThan cutoff: String, on connection: PostgresConnection) throws -> [(table: String, month: String)] {
        try connection.execute("""
            SELECT c.relname, substring(c.relname FROM '^(audit_log_[0-9]{4}_[0-9]{2})')
            FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
              AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}(_detached(_[0-9]+)?)?$'
            ORDER BY 1
            """).rows.compactMap { row -> (table: String, month: String)? in
                guard let table = row[0], let month = row[1] else { return nil }
                guard String(month.dropFirst("audit_log_".count)) < cutoff else { return nil }
                return (table, month)
            }
    }
}
