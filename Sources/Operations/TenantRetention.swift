import AuditCore
import Evidence
import Foundation
import Postgres

/// A retention per tenant (migration 0028), shorter than the global month-level prune: the
/// tenant's events older than its days are deleted from months other tenants keep.
///
/// What is removed is whole sealed groups (one batch's rows of one tenant in one month) whose
/// newest event is older than the cutoff, so each removal is attested exactly: each month's
/// deletion is recorded as an operation of kind `retention` in its transaction, which `verify`
/// accounts and the next checkpoint signs. A group whose events straddle the cutoff stays until
/// its newest event is past it too; a consumer's batches span seconds, a backfill's can span the
/// month. Rows sealed by no batch (from before tamper evidence) are deleted row by row. Not
/// removed: groups a legal hold covers, and, once checkpoints have begun, groups of batches not
/// yet in the log (the next run removes them).
///
/// DELETE takes ROW EXCLUSIVE on the month, as COPY does: ingest goes on meanwhile.
public enum TenantRetention {
    public struct Setting: Codable, Sendable, Equatable {
        public var tenantID: String
        public var days: Int
        public var updatedAt: String
        public var updatedBy: String
    }

    /// What one run did (or, dry, would do) in one month of one tenant.
    public struct MonthResult: Codable, Sendable, Equatable {
        public var tenantID: String
        public var month: String
        /// The sealed groups (batch, tenant) removed, and their rows; plus unsealed rows.
        public var groups: Int
        public var rows: Int64
        /// The record in audit_operation; nil for a dry run or when only unsealed rows went.
        public var operation: Int64?
        /// Expired groups kept, and why.
        public var keptByHold: Int
        public var keptUntilCheckpointed: Int
        public var holds: [Int64]
    }

    public struct Result: Codable, Sendable {
        public var months: [MonthResult]
        public var dryRun: Bool
    }

    public static func set(tenant: String, days: Int, on connection: PostgresConnection) throws -> Setting {
        guard (1...36500).contains(days) else { throw OperationsError("--days must be 1 to 36500") }
        guard try connection.query("SELECT EXISTS (SELECT FROM tenant WHERE id = $1::uuid)", [tenant]).scalar == "t" else {
            throw OperationsError("no tenant \(tenant)")
        }
        try connection.query("""
            INSERT INTO tenant_retention (tenant_id, days) VALUES ($1::uuid, $2::integer)
            ON CONFLICT (tenant_id) DO UPDATE SET days = excluded.days, updated_at = now(), updated_by = current_user
            """, [tenant, String(days)])
        guard let setting = try list(on: connection).first(where: { $0.tenantID == tenant.lowercased() }) else {
            throw OperationsError("tenant_retention: the setting is not listed")
        }
        return setting
    }

    /// Removes the tenant's own retention (the global prune still applies); false when it had none.
    public static func clear(tenant: String, on connection: PostgresConnection) throws -> Bool {
        try connection.query("DELETE FROM tenant_retention WHERE tenant_id = $1::uuid", [tenant]).affectedRows == 1
    }

    public static func list(on connection: PostgresConnection) throws -> [Setting] {
        try connection.execute("""
            SELECT tenant_id::text, days::text, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), updated_by
            FROM tenant_retention ORDER BY tenant_id
            """).rows.compactMap { row in
                guard let tenant = row[0], let days = row[1].flatMap({ Int($0) }), let at = row[2], let by = row[3] else { return nil }
                return Setting(tenantID: tenant, days: days, updatedAt: at, updatedBy: by)
            }
    }

    /// Applies every tenant's retention to the months that began before its cutoff.
    public static func apply(dryRun: Bool, on connection: PostgresConnection) throws -> Result {
        let settings = try connection.execute("""
            SELECT tenant_id::text, (now() - days * interval '1 day')::text FROM tenant_retention ORDER BY tenant_id
            """).rows
        let months = try Partitions.list(on: connection).filter { $0.parent == "audit_log" }.compactMap { partition -> (String, Month)? in
            Month(String(partition.name.dropFirst("audit_log_".count))).map { (partition.name, $0) }
        }
        var result = Result(months: [], dryRun: dryRun)
        for setting in settings {
            guard let tenantText = setting[0], let tenant = UUIDValue(tenantText), let cutoff = setting[1] else { continue }
            for (table, month) in months.sorted(by: { $0.1 < $1.1 }) {
                guard try connection.query("SELECT $1::date < $2::timestamptz", [month.firstDayISO, cutoff]).scalar == "t" else { continue }
                if let done = try apply(tenant: tenant, month: month, table: table, cutoff: cutoff, dryRun: dryRun, on: connection) {
                    result.months.append(done)
                }
            }
        }
        return result
    }

    /// One tenant in one month, in one transaction; nil when nothing there is past the cutoff.
    static func apply(tenant: UUIDValue, month: Month, table: String, cutoff: String, dryRun: Bool,
                      on connection: PostgresConnection) throws -> MonthResult? {
        let quoted = PostgresConnection.quoteIdentifier(table)
        return try connection.transaction { connection in
            try LegalHolds.lockForRemoval(on: connection)
            let checkpointed = try connection.execute("SELECT EXISTS (SELECT FROM audit_checkpoint)").scalar == "t"
            // Each group of the tenant here with its newest event past the cutoff: held, or
            // waiting for the log, or removable.
            let expired = try connection.query("""
                WITH g AS (
                    SELECT batch_id, min("timestamp") AS first, max("timestamp") AS last, count(*) AS rows
                    FROM \(quoted) WHERE tenant_id = $1::uuid AND batch_id <> 0 GROUP BY batch_id)
                SELECT g.batch_id::text, g.rows::text,
                       (SELECT string_agg(h.id::text, ',' ORDER BY h.id) FROM tenant_legal_hold h
                        WHERE h.tenant_id = $1::uuid AND h.released_at IS NULL
                          AND g.last >= coalesce(h.events_from, '-infinity') AND g.first < coalesce(h.events_until, 'infinity')),
                       $3::boolean AND b.log_index IS NULL
                FROM g LEFT JOIN audit_batch b ON b.id = g.batch_id
                WHERE g.last < $2::timestamptz
                ORDER BY g.batch_id
                """, [tenant.description, cutoff, checkpointed ? "true" : "false"]).rows
            var removable: [Int64] = [], keptByHold = 0, keptUntilCheckpointed = 0, holds = Set<Int64>()
            for row in expired {
                guard let batch = row[0].flatMap({ Int64($0) }) else { continue }
                if let held = row[2] {
                    keptByHold += 1
                    holds.formUnion(held.split(separator: ",").compactMap { Int64($0) })
                } else if row[3] == "t" {
                    keptUntilCheckpointed += 1
                } else {
                    removable.append(batch)
                }
            }
            let unsealedCondition = """
                tenant_id = $1::uuid AND batch_id = 0 AND "timestamp" < $2::timestamptz
                AND NOT EXISTS (SELECT FROM tenant_legal_hold h WHERE h.tenant_id = $1::uuid AND h.released_at IS NULL
                                AND "timestamp" >= coalesce(h.events_from, '-infinity') AND "timestamp" < coalesce(h.events_until, 'infinity'))
                """
            let groups = try AttestedOperations.groups(tenant: tenant, month: month, batches: removable, on: connection)
            let removed = Set(removable)
            var rows = expired.reduce(Int64(0)) { sum, row in
                removed.contains(Int64(row[0] ?? "") ?? -1) ? sum + (row[1].flatMap { Int64($0) } ?? 0) : sum
            }
            var operation: Int64?
            if dryRun {
                rows += Int64(try connection.query("SELECT count(*) FROM \(quoted) WHERE \(unsealedCondition)",
                                                   [tenant.description, cutoff]).scalar ?? "") ?? 0
            } else {
                rows = Int64(try connection.query("DELETE FROM \(quoted) WHERE \(unsealedCondition)", [tenant.description, cutoff]).affectedRows)
                if !removable.isEmpty {
                    rows += Int64(try connection.query("DELETE FROM \(quoted) WHERE tenant_id = $1::uuid AND batch_id = ANY($2::bigint[])",
                                                       [tenant.description, "{" + removable.map(String.init).joined(separator: ",") + "}"])
                        .affectedRows)
                    operation = try AttestedOperations.record(LogOperation(
                        kind: .retention, month: month, table: table, archiveFile: nil, archiveSHA256: nil, archiveRows: nil,
                        recordedAt: Int64(Date().timeIntervalSince1970), groups: groups), on: connection)
                }
            }
            guard rows > 0 || keptByHold > 0 || keptUntilCheckpointed > 0 else { return nil }
            return MonthResult(tenantID: tenant.description, month: month.description, groups: groups.count, rows: rows,
                               operation: operation, keptByHold: keptByHold, keptUntilCheckpointed: keptUntilCheckpointed,
                               holds: holds.sorted())
        }
    }
}
