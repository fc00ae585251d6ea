import AuditCore
import Evidence
import Foundation
import Postgres

/// Builds a tenant's inclusion proof for one event (`GET /v1/tenants/{id}/events/{event_id}/proof`).
///
/// The event and the rows it shares its group with are read as the tenant (`ReaderSession`:
/// `audit_reader`, row-level security); the batch's other groups appear only as hashes. The batch
/// record, its source ranges and the log are read as the API's own role: a proof discloses the
/// batch's row and dead-letter counts and the source positions it covers, no other tenant's data.
///
/// Cost: the tenant's rows of the batch in that month (no index on `batch_id`: found through the
/// tenant's key by time), and one hash per batch in the log up to the checkpoint.
public enum EventProofs {
    public static let parameterNames: Set<String> = ["checkpoint"]

    public static func proof(tenantID: String, eventID: String, parameters: [String: String], activeOnly: Bool,
                             on connection: PostgresConnection) throws -> EventProof {
        guard UUIDValue(eventID) != nil else { throw ReadError.badParameter("event_id", "\(eventID) is not an event id (a UUID)") }
        var wantedSize: Int64?
        if let text = parameters["checkpoint"] {
            guard let size = Int64(text), size > 0 else {
                throw ReadError.badParameter("checkpoint", "\(text) is not a checkpoint's tree size (a positive integer)")
            }
            wantedSize = size
        }
        let sealed = try ReaderSession.run(tenantID: tenantID, on: connection, activeOnly: activeOnly) { connection in
            try groupLeaves(tenantID: tenantID, eventID: eventID, on: connection)
        }
        return try connection.transaction { connection in
            try connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return try climb(sealed, tenantID: tenantID, eventID: eventID, wantedSize: wantedSize, on: connection)
        }
    }

    /// The event's group: its batch and month, its leaf data, and every leaf of the group.
    struct SealedGroupRows {
        var batch: Int64
        var month: Month
        var leafData: [UInt8]
        var leaves: [TreeHash]
        var eventLeaf: TreeHash
    }

    private static func groupLeaves(tenantID: String, eventID: String, on connection: PostgresConnection) throws -> SealedGroupRows {
        guard let found = try connection.query("""
            SELECT batch_id, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM') FROM audit_log
            WHERE tenant_id = $1::uuid AND id = $2::uuid
            """, [tenantID, eventID]).rows.first, let batch = found[0].flatMap({ Int64($0) }),
            let month = found[1].flatMap({ Month($0) }) else {
            throw ReadError(kind: .notFound, message: "tenant \(tenantID) has no event \(eventID)")
        }
        guard batch != 0 else {
            throw ReadError(kind: .notFound, message: "event \(eventID) was stored before sealing began (migration 0018): it has no proof")
        }
        // No value in the COPY's text: the batch and month go through settings of this transaction.
        try connection.query("SELECT set_config('audit.proof_batch', $1, true), set_config('audit.proof_month', $2, true)",
                             [String(batch), month.firstDayISO])
        var leaves: [TreeHash] = []
        var leafData: [UInt8] = []
        var header = true
        let id = UUIDValue(eventID)!
        _ = try connection.copyOut("""
            COPY (SELECT \(sealedColumns) FROM audit_log
                  WHERE tenant_id = current_setting('app.tenant_id')::uuid
                    AND "timestamp" >= (current_setting('audit.proof_month') || ' 00:00:00+00')::timestamptz
                    AND "timestamp" < (current_setting('audit.proof_month') || ' 00:00:00+00')::timestamptz + interval '1 month'
                    AND batch_id = current_setting('audit.proof_batch')::bigint) TO STDOUT (FORMAT binary)
            """) { chunk in
            var tuples = chunk
            if header {
                tuples = UnsafeRawBufferPointer(rebasing: chunk[min(chunk.count, BinaryCopyEncoder.header.count)...])
                header = false
            }
            try BinaryCopyTuples.forEach(in: tuples) { fields in
                let data = fields.all
                leaves.append(MerkleTree.leaf(kind: LeafKind.row, data))
                if fields.starts.first?.length == 16, data.count >= 20,
                   UInt64(bigEndian: data.loadUnaligned(fromByteOffset: 4, as: UInt64.self)) == id.high,
                   UInt64(bigEndian: data.loadUnaligned(fromByteOffset: 12, as: UInt64.self)) == id.low {
                    leafData = Array(data)
                }
            }
        }
        guard !leafData.isEmpty else { throw ReadError(kind: .notFound, message: "event \(eventID) is no longer in its month's partition") }
        let eventLeaf = leafData.withUnsafeBytes { MerkleTree.leaf(kind: LeafKind.row, $0) }
        return SealedGroupRows(batch: batch, month: month, leafData: leafData, leaves: leaves.sorted(), eventLeaf: eventLeaf)
    }

    private static func climb(_ sealed: SealedGroupRows, tenantID: String, eventID: String, wantedSize: Int64?,
                              on connection: PostgresConnection) throws -> EventProof {
        let batchID = String(sealed.batch)
        guard let record = try connection.query("""
            SELECT row_count, dead_letter_count, log_index FROM audit_batch WHERE id = $1::bigint
            """, [batchID]).rows.first, let rows = record[0].flatMap({ Int64($0) }),
            let deadLetters = record[1].flatMap({ Int64($0) }) else {
            throw ReadError(kind: .notFound, message: "batch \(batchID) of event \(eventID) has no record: run `audit-ingest verify`")
        }
        guard let logIndex = record[2].flatMap({ Int64($0) }) else {
            throw ReadError(kind: .notFound, message: "batch \(batchID) of event \(eventID) is not in the log yet: retry after the next checkpoint")
        }

        // The groups of the batch, in the batch's order; ours must hold the leaves just read.
        let tenant = UUIDValue(tenantID)!
        var groups: [SealedGroup] = []
        for row in try connection.query("""
            SELECT kind, tenant_id, to_char(month, 'YYYY-MM'), leaf_count, encode(subroot, 'hex')
            FROM audit_batch_group WHERE batch_id = $1::bigint
            """, [batchID]).rows {
            guard let count = row[3].flatMap({ Int($0) }), let subroot = row[4].flatMap({ TreeHash(hex: $0) }) else { continue }
            groups.append(SealedGroup(kind: row[0] == "R" ? .rows : .deadLetters, tenantID: row[1].flatMap { UUIDValue($0) },
                                      month: row[2].flatMap { Month($0) }, leafCount: count, subroot: subroot))
        }
        groups.sort(by: SealedGroup.precedes)
        let ours = SealedGroup(kind: .rows, tenantID: tenant, month: sealed.month, leaves: sealed.leaves)
        guard let groupIndex = groups.firstIndex(of: ours) else {
            throw ReadError(kind: .notFound, message: """
                the stored rows of batch \(batchID) no longer match its seal (tenant \(tenantID), \(sealed.month)): \
                run `audit-ingest verify`
                """)
        }
        let ranges = try connection.query("""
            SELECT source, "partition", shard, layout, first_offset, next_offset FROM audit_batch_range WHERE batch_id = $1::bigint
            """, [batchID]).rows.compactMap { row -> SourceRange? in
            guard let source = row[0], let partition = row[1].flatMap({ Int32($0) }), let shard = row[2].flatMap({ Int32($0) }),
                  let layout = row[3].flatMap({ Int64($0) }), let first = row[4].flatMap({ Int64($0) }),
                  let next = row[5].flatMap({ Int64($0) }) else { return nil }
            return SourceRange(source: source, partition: partition, shard: shard, layout: layout, first: first, next: next)
        }.sorted(by: SourceRange.precedes)

        // The checkpoint: the one asked for, or the newest; it must cover the batch.
        let checkpoint = try wantedSize.map {
            try connection.query("SELECT tree_size, note FROM audit_checkpoint WHERE tree_size = $1::bigint", [String($0)]).rows.first
        } ?? connection.execute("SELECT tree_size, note FROM audit_checkpoint ORDER BY tree_size DESC LIMIT 1").rows.first
        guard let checkpoint, let size = checkpoint[0].flatMap({ Int64($0) }), let note = checkpoint[1] else {
            throw ReadError(kind: .notFound, message: wantedSize.map { "no checkpoint of \($0) batches" } ?? "no checkpoint yet: run `audit-ingest checkpoint`")
        }
        guard logIndex < size else {
            throw ReadError(kind: .notFound, message: """
                batch \(batchID) is at log position \(logIndex), after checkpoint \(size): retry after the next checkpoint
                """)
        }
        let logPath = try LogTree.hashes(of: MerkleProof.inclusionRanges(index: logIndex, size: size), size: size, on: connection)

        let groupIndexInLeaves = sealed.leaves.firstIndex(of: sealed.eventLeaf)!
        return EventProof(
            eventID: eventID.lowercased(), tenantID: tenantID, leaf: sealed.leafData,
            group: .init(index: Int64(groupIndexInLeaves), size: Int64(sealed.leaves.count),
                         path: MerkleProof.inclusionPath(index: groupIndexInLeaves, leaves: sealed.leaves)),
            batch: .init(id: sealed.batch, month: sealed.month.description, rows: rows, deadLetters: deadLetters,
                         ranges: ranges,
                         groups: .init(index: Int64(groupIndex), size: Int64(groups.count),
                                       path: MerkleProof.inclusionPath(index: groupIndex, leaves: groups.map(\.leafHash)))),
            log: .init(index: logIndex, size: size, path: logPath),
            checkpoint: note)
    }

    /// The columns a row's leaf covers, in the order ingest COPYs them.
    static let sealedColumns =
        #"id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address, user_agent, custom_metadata"#
}
