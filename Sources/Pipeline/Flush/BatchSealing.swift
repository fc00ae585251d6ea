import AuditCore
import Evidence
import Postgres

/// The seal of one flush (migration 0018, docs/tamper-evidence.md), written in the flush's
/// transaction once its rows and dead letters are in: the batch record, its groups, and for each
/// ingest_offsets row the flush moved, its source range and the row's new chain head.
struct BatchSealing {
    let streams: SourceStreams
    let shard: Int

    /// The id every row and dead letter of the batch carries.
    static func nextBatchID(on connection: PostgresConnection) throws -> Int64 {
        guard let text = try connection.execute("SELECT nextval('audit_batch_id_seq')").scalar, let id = Int64(text) else {
            throw PostgresError(code: .unexpectedResult, message: "nextval('audit_batch_id_seq') returned no number")
        }
        return id
    }

    /// `rows` are the stored rows sorted by tenant and time, `leaves` their leaf hashes in the
    /// same order; `deadLetterLeaves` those of every dead letter the batch wrote.
    func seal(batchID: Int64, rows: ArraySlice<EncodedRow>, leaves: [TreeHash], deadLetterLeaves: [TreeHash],
              from committed: [Int32: Int64], to pending: [Int32: Mark], layouts: [Int32: Int64],
              on connection: PostgresConnection) throws {
        let seal = BatchSeal(groups: Self.groups(rows: rows, leaves: leaves, deadLetterLeaves: deadLetterLeaves),
                             ranges: ranges(from: committed, to: pending, layouts: layouts))
        let digest = seal.digest
        _ = try connection.query(
            "INSERT INTO audit_batch (id, shard, row_count, dead_letter_count, root, digest) VALUES ($1, $2, $3, $4, $5, $6)",
            [String(batchID), String(shard), String(seal.rowCount), String(seal.deadLetterCount),
             seal.root.byteaLiteral, digest.byteaLiteral])
        try writeGroups(seal.groups, batchID: batchID, on: connection)
        for (source, ranges) in Dictionary(grouping: seal.ranges, by: \.source).sorted(by: { $0.key < $1.key }) {
            try advanceHeads(source: source, ranges: ranges, batchID: batchID, digest: digest, on: connection)
        }
    }

    /// One group per (tenant, month) run of the rows, then one of the dead letters.
    static func groups(rows: ArraySlice<EncodedRow>, leaves: [TreeHash], deadLetterLeaves: [TreeHash]) -> [SealedGroup] {
        var groups: [SealedGroup] = []
        var start = rows.startIndex
        while start < rows.endIndex {
            let tenant = rows[start].tenantID, month = rows[start].month
            var end = start + 1
            while end < rows.endIndex, rows[end].tenantID == tenant, rows[end].month == month { end += 1 }
            let base = start - rows.startIndex
            groups.append(SealedGroup(kind: .rows, tenantID: tenant, month: month,
                                      leaves: Array(leaves[base..<(base + end - start)])))
            start = end
        }
        if !deadLetterLeaves.isEmpty {
            groups.append(SealedGroup(kind: .deadLetters, tenantID: nil, month: nil, leaves: deadLetterLeaves))
        }
        return groups
    }

    private func ranges(from committed: [Int32: Int64], to pending: [Int32: Mark], layouts: [Int32: Int64]) -> [SourceRange] {
        pending.compactMap { partition, mark in
            let first = committed[partition] ?? 0
            guard first != mark.next else { return nil }
            let location = streams.locate(partition)
            return SourceRange(source: location.source, partition: location.partition, shard: Int32(shard),
                               layout: layouts[partition] ?? 0, first: first, next: mark.next)
        }
    }

    private func writeGroups(_ groups: [SealedGroup], batchID: Int64, on connection: PostgresConnection) throws {
        try connection.copyBinary(
            "COPY audit_batch_group (batch_id, ordinal, kind, tenant_id, month, leaf_count, subroot) FROM STDIN (FORMAT binary)"
        ) { writer in
            for (ordinal, group) in groups.enumerated() {
                writer.encoder.beginRow(fieldCount: 7)
                writer.encoder.appendInt64(batchID)
                writer.encoder.appendInt32(Int32(ordinal))
                writer.encoder.appendBytes([group.kind.rawValue])  // "char": one byte
                if let tenant = group.tenantID { writer.encoder.appendUUID(tenant.bytes) } else { writer.encoder.appendNull() }
                if let month = group.month { writer.encoder.appendDate(unixDays: Int32(month.firstUnixDay)) } else { writer.encoder.appendNull() }
                writer.encoder.appendInt32(Int32(group.leafCount))
                writer.encoder.appendBytes(group.subroot.bytes)
                try writer.sendIfFull()
            }
        }
    }

    /// Chains `digest` into each moved row's head (in the rows the compare-and-set locked) and
    /// records each range with the head it left.
    private func advanceHeads(source: String, ranges: [SourceRange], batchID: Int64, digest: TreeHash,
                              on connection: PostgresConnection) throws {
        func array<T>(_ values: [T]) -> String { "{" + values.map { "\($0)" }.joined(separator: ",") + "}" }
        let moved = try connection.query("""
            WITH moved AS (
                UPDATE ingest_offsets AS o SET batch_hash = sha256(o.batch_hash || $4::bytea)
                FROM unnest($3::int[], $5::bigint[], $6::bigint[]) AS u(p, first, next)
                WHERE o.source = $1 AND o.shard = $2 AND o."partition" = u.p
                RETURNING o."partition", o.layout, u.first, u.next, o.batch_hash),
            recorded AS (
                INSERT INTO audit_batch_range (batch_id, source, "partition", shard, layout, first_offset, next_offset, head)
                SELECT $7, $1, "partition", $2, layout, first, next, batch_hash FROM moved)
            SELECT count(*) FROM moved
            """, [source, String(shard), array(ranges.map(\.partition)), digest.byteaLiteral,
                  array(ranges.map(\.first)), array(ranges.map(\.next)), String(batchID)]).scalar.flatMap { Int($0) }
        guard moved == ranges.count else {
            throw PostgresError(code: .unexpectedResult, message: "sealing: \(moved ?? 0) of \(ranges.count) position rows of \(source) moved")
        }
    }
}

extension EncodedRow {
    /// The row's fields as COPY sends them, without the field count in front.
    var fieldBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes + 2, count: rowLength - 2) }

    /// SHA-256(0x00 ‖ "R" ‖ the fields): what `verify` computes again from the stored row.
    var leafHash: TreeHash { MerkleTree.leaf(kind: LeafKind.row, fieldBytes) }
}

extension DeadLetter {
    static let copyColumnCount = 9
    static let copyColumns = #"source, "partition", "offset", record, tenant_id, raw_payload, reason, sqlstate, detail"#

    /// The fields of `copyColumns` (no field count).
    func appendCopyFields(source location: SourceStreams.Location, to encoder: inout BinaryCopyEncoder) {
        encoder.appendText(location.source)
        encoder.appendInt32(location.partition)
        encoder.appendInt64(offset)
        encoder.appendInt32(record)
        if let tenant = tenantID { encoder.appendUUID(tenant.bytes) } else { encoder.appendNull() }
        encoder.appendBytes(rawMessage)
        encoder.appendText(reason)
        if let sqlState { encoder.appendText(sqlState) } else { encoder.appendNull() }
        if let detail { encoder.appendText(detail.withoutNULs) } else { encoder.appendNull() }
    }
}

extension String {
    /// This text without its NUL characters, which PostgreSQL's text cannot hold (a detail may
    /// quote the input). Most have none, and are returned as they are: Foundation's
    /// `replacingOccurrences` cost about 37,000 instructions on every dead letter.
    package var withoutNULs: String {
        utf8.contains(0) ? String(decoding: utf8.lazy.filter { $0 != 0 }, as: UTF8.self) : self
    }
}
