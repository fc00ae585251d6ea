import AuditCore
import Evidence
import Foundation
import Postgres

/// Records of operations that remove sealed rows (migration 0021): written in the transaction
/// that removes them, appended to the signed log by the next checkpoint, and accounted by
/// `verify`, which recomputes each record's digest from the groups' sealed subroots.
enum AttestedOperations {
    /// Inserts the record and its groups; returns its id (audit_operation.id).
    static func record(_ operation: LogOperation, on connection: PostgresConnection) throws -> Int64 {
        guard let id = try connection.query("""
            INSERT INTO audit_operation (kind, month, table_name, archive_file, archive_sha256, archive_rows, recorded_at, digest)
            VALUES ($1, $2::date, $3, $4, $5, $6::bigint, to_timestamp($7::bigint), decode($8, 'hex')) RETURNING id
            """, [operation.kind.rawValue, operation.month.firstDayISO, operation.table, operation.archiveFile, operation.archiveSHA256,
                  operation.archiveRows.map(String.init), String(operation.recordedAt), operation.digest.description])
            .scalar.flatMap({ Int64($0) }) else {
            throw OperationsError("recording the \(operation.kind.rawValue) of \(operation.month) returned no id")
        }
        if !operation.groups.isEmpty {
            _ = try connection.query("""
                INSERT INTO audit_operation_group (operation_id, batch_id, tenant_id)
                SELECT $1::bigint, b, t FROM unnest($2::bigint[], $3::uuid[]) AS u(b, t)
                """, [String(id), "{" + operation.groups.map { String($0.batch) }.joined(separator: ",") + "}",
                      "{" + operation.groups.map { $0.tenantID.description }.joined(separator: ",") + "}"])
        }
        return id
    }

    /// The sealed row groups of `tenant` in `month` that `batches` wrote, as audit_batch_group holds them.
    static func groups(tenant: UUIDValue, month: Month, batches: [Int64], on connection: PostgresConnection) throws -> [LogOperation.RemovedGroup] {
        try connection.query("""
            SELECT batch_id, leaf_count, encode(subroot, 'hex') FROM audit_batch_group
            WHERE kind = 'R' AND tenant_id = $1::uuid AND month = $2::date AND batch_id = ANY($3::bigint[])
            """, [tenant.description, month.firstDayISO, "{" + batches.map(String.init).joined(separator: ",") + "}"])
            .rows.compactMap { row in
                guard let batch = row[0].flatMap({ Int64($0) }), let count = row[1].flatMap({ Int64($0) }),
                      let subroot = row[2].flatMap({ TreeHash(hex: $0) }) else { return nil }
                return LogOperation.RemovedGroup(batch: batch, tenantID: tenant, leafCount: count, subroot: subroot)
            }
    }
}
