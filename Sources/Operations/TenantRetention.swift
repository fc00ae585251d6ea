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
/// month. Rows sealed by no batch, in months from before tamper evidence, are deleted row by
/// row. Not removed: groups a legal hold covers; groups whose rows are fewer or more than their
/// batch sealed (removing them would erase what `verify` reports); and, once checkpoints have
/// begun, groups of batches not yet in the log (the next run removes them).
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
        public var groups = 0
        public var rows: Int64 = 0
        /// The record in audit_operation; nil for a dry run or when only unsealed rows went.
        public var operation: Int64?
        /// Expired groups kept, and why.
        public var keptByHold = 0
        public var keptUntilCheckpointed = 0
        /// Groups whose rows are not what their batch sealed: `verify` names them.
        public var keptNotAsSealed = 0
        public var holds: [Int64] = []

        init(tenantID: String, month: String) {
            self.tenantID = tenantID
            self.month = month
        }
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

    /// Applies every tenant's retention to the months that began before its cutoff; months
    /// before `skippingBefore` (`YYYY_MM`: those a prune is about to drop whole) are left out.
    public static func apply(dryRun: Bool, skippingBefore: String? = nil, on connection: PostgresConnection) throws -> Result {
        try LegalHolds.whileRemoving(on: connection) {
            try Maintenance.withoutStatementTimeout(on: connection) {
                try applyLocked(dryRun: dryRun, skippingBefore: skippingBefore, on: connection)
            }
        }
    }

    private static func applyLocked(dryRun: Bool, skippingBefore: String?, on connection: PostgresConnection) throws -> Result {
        // Each tenant's cutoff, and the month it falls in (UTC), computed by the server.
        let settings = try connection.execute("""
            SELECT tenant_id::text, extract(epoch FROM now() - days * interval '1 day')::bigint::text,
                   to_char((now() - days * interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM')
            FROM tenant_retention ORDER BY tenant_id
            """).rows
        let months = try Partitions.list(on: connection).filter { $0.parent == "audit_log" }.compactMap { partition -> (String, Month)? in
            let suffix = String(partition.name.dropFirst("audit_log_".count))
            if let skippingBefore, suffix < skippingBefore { return nil }
            return Month(suffix).map { (partition.name, $0) }
        }.sorted { $0.1 < $1.1 }
        var result = Result(months: [], dryRun: dryRun)
        for setting in settings {
            guard let tenantText = setting[0], let tenant = UUIDValue(tenantText), let cutoff = setting[1].flatMap({ Int64($0) }),
                  let cutoffMonth = setting[2].flatMap({ Month($0) }) else { continue }
            for (table, month) in months where month <= cutoffMonth {
                if let done = try apply(tenant: tenant, month: month, table: table, cutoff: cutoff, dryRun: dryRun, on: connection) {
                    result.months.append(done)
                }
            }
        }
        return result
    }

    /// One tenant in one month, in one transaction; nil when nothing there is past the cutoff
    /// (`cutoff` in seconds since 1970).
    static func apply(tenant: UUIDValue, month: Month, table: String, cutoff: Int64, dryRun: Bool,
                      on connection: PostgresConnection) throws -> MonthResult? {
        let quoted = PostgresConnection.quoteIdentifier(table)
        let parameters = [tenant.description, String(cutoff), month.firstDayISO]
        return try connection.transaction { connection in
            try LegalHolds.lockForRemoval(on: connection)
            let checkpointed = try connection.execute("SELECT EXISTS (SELECT FROM audit_checkpoint)").scalar == "t"
            // Each group of the tenant here with its newest event past the cutoff, beside what its
            // batch sealed: held, waiting for the log, not as sealed, or removable.
            let expired = try connection.query("""
                WITH r AS (
                    SELECT batch_id, min("timestamp") AS first, max("timestamp") AS last, count(*) AS rows
                    FROM \(quoted) WHERE tenant_id = $1::uuid AND batch_id <> 0 GROUP BY batch_id)
                SELECT r.batch_id::text, r.rows::text,
                       (SELECT string_agg(h.id::text, ',' ORDER BY h.id) FROM tenant_legal_hold h
                        WHERE h.tenant_id = $1::uuid AND h.released_at IS NULL
                          AND r.last >= coalesce(h.events_from, '-infinity') AND r.first < coalesce(h.events_until, 'infinity')),
                       \(checkpointed ? "true" : "false") AND b.log_index IS NULL,
                       g.leaf_count IS NOT DISTINCT FROM r.rows
                FROM r
                LEFT JOIN audit_batch b ON b.id = r.batch_id
                LEFT JOIN audit_batch_group g ON g.batch_id = r.batch_id AND g.kind = 'R' AND g.tenant_id = $1::uuid AND g.month = $3::date
                WHERE r.last < to_timestamp($2::bigint)
                ORDER BY r.batch_id
                """, parameters).rows
            var removable: [Int64] = [], outcome = MonthResult(tenantID: tenant.description, month: month.description)
            for row in expired {
                guard let batch = row[0].flatMap({ Int64($0) }) else { continue }
                if let held = row[2] {
                    outcome.keptByHold += 1
                    outcome.holds = Array(Set(outcome.holds).union(held.split(separator: ",").compactMap { Int64($0) })).sorted()
                } else if row[3] == "t" {
                    outcome.keptUntilCheckpointed += 1
                } else if row[4] != "t" {
                    // Fewer or more rows than its batch sealed (or none sealed): removing them
                    // would erase what verify reports. Kept for verify to name.
                    outcome.keptNotAsSealed += 1
                } else {
                    removable.append(batch)
                }
            }
            // Rows sealed by no batch, in months from before sealing began, go row by row.
            let unsealed = """
                r.tenant_id = $1::uuid AND r.batch_id = 0 AND r."timestamp" < to_timestamp($2::bigint)
                AND EXISTS (SELECT FROM audit_unsealed_month u WHERE u.month = $3::date)
                AND NOT EXISTS (SELECT FROM tenant_legal_hold h WHERE h.tenant_id = $1::uuid AND h.released_at IS NULL
                                AND r."timestamp" >= coalesce(h.events_from, '-infinity') AND r."timestamp" < coalesce(h.events_until, 'infinity'))
                """
            let groups = try AttestedOperations.groups(tenant: tenant, month: month, batches: removable, on: connection)
            outcome.groups = groups.count
            if dryRun {
                outcome.rows = groups.reduce(0) { $0 + $1.leafCount }
                    + (Int64(try connection.query("SELECT count(*) FROM \(quoted) r WHERE \(unsealed)", parameters).scalar ?? "") ?? 0)
            } else {
                outcome.rows = Int64(try connection.query("DELETE FROM \(quoted) r WHERE \(unsealed)", parameters).affectedRows)
                if !groups.isEmpty {
                    outcome.rows += Int64(try connection.query("DELETE FROM \(quoted) WHERE tenant_id = $1::uuid AND batch_id = ANY($2::bigint[])",
                                                               [tenant.description, "{" + groups.map { String($0.batch) }.joined(separator: ",") + "}"])
                        .affectedRows)
                    outcome.operation = try AttestedOperations.record(LogOperation(
                        kind: .retention, month: month, table: table, archiveFile: nil, archiveSHA256: nil, archiveRows: nil,
                        recordedAt: Int64(Date().timeIntervalSince1970), groups: groups), on: connection)
                }
            }
            guard outcome.rows > 0 || outcome.keptByHold > 0 || outcome.keptUntilCheckpointed > 0 || outcome.keptNotAsSealed > 0 else {
                return nil
            }
            return outcome
        }
    }
}
