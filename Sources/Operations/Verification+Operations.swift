import AuditCore
import Evidence
import Foundation
import Postgres

/// The attested operations' part of `verify` (migration 0021): each prune's record recomputed
/// from the groups it names, and, with `archiveDirectory`, its archive read back and hashed
/// against those groups' sealed subroots.
extension Verification {
    /// One row of audit_operation with its groups.
    struct StoredOperation {
        var id: Int64
        var operation: LogOperation
        var digest: TreeHash?
        var logIndex: Int64?
    }

    /// The groups of sealed rows that attested operations removed, with the findings on them.
    struct OperationFindings {
        var failures: [(category: Category, table: String, batch: Int64?, tenant: UUIDValue?, detail: String)] = []
        var removed: Set<GroupKey> = []
        var operations = 0
        var archivesChecked = 0
        var archivedRows = 0
    }

    func checkOperations(expected: [GroupKey: (count: Int, subroot: TreeHash)], on connection: PostgresConnection) throws -> OperationFindings {
        var findings = OperationFindings()
        func fail(_ category: Category, _ table: String, batch: Int64? = nil, tenant: UUIDValue? = nil, _ detail: String) {
            findings.failures.append((category, table, batch, tenant, detail))
        }
        var members: [Int64: [(batch: Int64, tenant: UUIDValue)]] = [:]
        for row in try connection.execute("SELECT operation_id, batch_id, tenant_id FROM audit_operation_group").rows {
            guard let id = row[0].flatMap({ Int64($0) }), let batch = row[1].flatMap({ Int64($0) }),
                  let tenant = row[2].flatMap({ UUIDValue($0) }) else { continue }
            members[id, default: []].append((batch, tenant))
        }
        for row in try connection.execute("""
            SELECT id, kind, to_char(month, 'YYYY-MM'), table_name, archive_file, archive_sha256, archive_rows,
                   extract(epoch FROM recorded_at)::bigint, encode(digest, 'hex'), log_index
            FROM audit_operation ORDER BY id
            """).rows {
            guard let id = row[0].flatMap({ Int64($0) }), let kind = row[1].flatMap({ LogOperation.Kind(rawValue: $0) }),
                  let month = row[2].flatMap({ Month($0) }), let table = row[3],
                  let recordedAt = row[7].flatMap({ Int64($0) }) else { continue }
            findings.operations += 1
            var groups: [LogOperation.RemovedGroup] = []
            for member in members[id] ?? [] {
                let key = GroupKey(batch: member.batch, kind: .rows, tenant: member.tenant, month: month)
                guard let sealed = expected[key] else {
                    fail(.operationChanged, "audit_operation_group", batch: member.batch, tenant: member.tenant,
                         "operation \(id) (\(kind.rawValue) of \(month)) names a group no batch sealed")
                    continue
                }
                findings.removed.insert(key)
                groups.append(.init(batch: member.batch, tenantID: member.tenant, leafCount: Int64(sealed.count), subroot: sealed.subroot))
            }
            let stored = StoredOperation(
                id: id,
                operation: LogOperation(kind: kind, month: month, table: table, archiveFile: row[4], archiveSHA256: row[5],
                                        archiveRows: row[6].flatMap { Int64($0) }, recordedAt: recordedAt, groups: groups),
                digest: row[8].flatMap { TreeHash(hex: $0) }, logIndex: row[9].flatMap { Int64($0) })
            if stored.operation.digest != stored.digest {
                fail(.operationChanged, "audit_operation", """
                    operation \(id) (\(kind.rawValue) of \(month)): its month, table, archive or groups do not give its digest
                    """)
            }
            guard let archiveDirectory, let file = stored.operation.archiveFile else { continue }
            findings.archivesChecked += 1
            let checked = try checkArchive(stored, at: archiveDirectory + "/" + file, expected: expected, on: connection)
            findings.archivedRows += checked.rows
            for failure in checked.failures { fail(.archiveMismatch, archiveDirectory + "/" + file, batch: failure.batch, tenant: failure.tenant, failure.detail) }
        }
        return findings
    }

    /// Reads one archive back: its SHA-256 against the one attested, then its rows, loaded into a
    /// temporary table by PostgreSQL's own CSV parser and streamed out again as verify streams a
    /// month, hashed against the subroots of the groups the prune removed.
    func checkArchive(_ stored: StoredOperation, at path: String, expected: [GroupKey: (count: Int, subroot: TreeHash)],
                      on connection: PostgresConnection) throws -> (rows: Int, failures: [(batch: Int64?, tenant: UUIDValue?, detail: String)]) {
        var failures: [(batch: Int64?, tenant: UUIDValue?, detail: String)] = []
        let operation = stored.operation
        guard FileManager.default.fileExists(atPath: path) else {
            return (0, [(nil, nil, "the archive of operation \(stored.id) (prune of \(operation.month)) is not there")])
        }
        let sha256 = try PartitionArchive.sha256(of: path)
        guard sha256 == operation.archiveSHA256 else {
            return (0, [(nil, nil, """
                its SHA-256 is \(sha256), the prune of \(operation.month) (operation \(stored.id)) attested \
                \(operation.archiveSHA256 ?? "none"): the archive was changed
                """)])
        }
        var rows = 0
        var found = Set<GroupKey>()
        let attested = Set(operation.groups.map { GroupKey(batch: $0.batch, kind: .rows, tenant: $0.tenantID, month: operation.month) })
        try connection.transaction { connection in
            try connection.execute("CREATE TEMPORARY TABLE verify_archive (LIKE audit_log) ON COMMIT DROP")
            do {
                try connection.copyText("COPY verify_archive FROM STDIN (FORMAT csv, HEADER MATCH)") { writer in
                    try GunzipReader.forEachChunk(of: path) { chunk in
                        writer.encoder.appendEncodedRows(chunk)
                        try writer.sendIfFull()
                    }
                }
            } catch {
                failures.append((nil, nil, "it does not load as an archive of audit_log: \(error)"))
                return
            }
            try scan(table: "verify_archive", tenantField: 2, on: connection) { batch, tenant, leaves in
                rows += leaves.count
                guard batch != 0 else { return }  // stored before sealing began: nothing to compare with
                let key = GroupKey(batch: batch, kind: .rows, tenant: tenant, month: operation.month)
                found.insert(key)
                guard let sealed = expected[key], attested.contains(key) else {
                    return failures.append((batch, tenant, "\(leaves.count) rows the prune of \(operation.month) did not attest"))
                }
                if leaves.count != sealed.count {
                    failures.append((batch, tenant, "\(leaves.count) rows where the batch sealed \(sealed.count)"))
                } else if MerkleTree.root(leaves.sorted()) != sealed.subroot {
                    failures.append((batch, tenant, "the \(sealed.count) rows do not hash to the sealed subroot: a row was changed"))
                }
            }
        }
        for group in operation.groups where !found.contains(GroupKey(batch: group.batch, kind: .rows, tenant: group.tenantID, month: operation.month)) {
            failures.append((group.batch, group.tenantID, "the \(group.leafCount) rows the prune attested are not in it"))
        }
        if let attested = operation.archiveRows, Int64(rows) != attested, failures.isEmpty {
            failures.append((nil, nil, "\(rows) rows where the prune archived \(attested)"))
        }
        return (rows, failures)
    }
}
