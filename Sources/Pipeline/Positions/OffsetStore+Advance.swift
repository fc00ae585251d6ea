import AuditCore
import Logging
import Postgres

extension OffsetStore {
    // MARK: Writing (inside a flush transaction)

    /// Moves `shard`'s positions from `committed` to `pending` for every partition where they
    /// differ, as a compare-and-set (fencing): it fails when another process has moved or
    /// re-laid one of them since this one took it, so two processes never both store a
    /// position. Returns false, having written nothing, when every position already is where
    /// `pending` would put it: an earlier attempt whose COMMIT reply was lost did commit.
    /// Throws `partitionTakenOver` when another process owns a partition now.
    func advance(shard: Int, from committed: [Int32: Int64], to pending: [Int32: Mark], layouts: [Int32: Int64],
                 on connection: PostgresConnection) throws -> Bool {
        let changed = pending.filter { committed[$0.key] != $0.value.next }.sorted { $0.key < $1.key }
        guard !changed.isEmpty else { return true }
        let partitions = Self.arrayLiteral(changed.map(\.key))
        // A join over unnest: linear in the partitions a flush moves.
        let moved = try connection.query("""
            UPDATE ingest_offsets AS o SET next_offset = u.n, prefix_hash = u.h, updated_at = now()
            FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(p, expected, n, h, l)
            WHERE o.source = $1 AND o.shard = $2 AND o."partition" = u.p AND o.next_offset = u.expected AND o.layout = u.l
            RETURNING o."partition"
            """, [
                source, String(shard), partitions,
                Self.arrayLiteral(changed.map { committed[$0.key] ?? 0 }),
                Self.arrayLiteral(changed.map(\.value.next)),
                "{" + changed.map { $0.value.prefixHash.map(String.init) ?? "NULL" }.joined(separator: ",") + "}",
                Self.arrayLiteral(changed.map { layouts[$0.key] ?? 0 }),
            ]).rows.count
        guard moved < changed.count else { return true }
        let stored = try connection.query(
            #"SELECT "partition", next_offset, layout FROM ingest_offsets WHERE source = $1 AND shard = $2 AND "partition" = ANY($3::int[])"#,
            [source, String(shard), partitions]).rows
        // Rows of another layout count as missing: that layout is another process's.
        let current = Dictionary(stored.compactMap { row -> (Int32, Int64)? in
            guard let partition = row[0].flatMap({ Int32($0) }), let next = row[1].flatMap({ Int64($0) }),
                  row[2].flatMap({ Int64($0) }) == layouts[partition] ?? 0 else { return nil }
            return (partition, next)
        }, uniquingKeysWith: { first, _ in first })
        if changed.allSatisfy({ current[$0.key] == $0.value.next }) { return false }
        let moves = changed.filter { current[$0.key] != committed[$0.key] ?? 0 }.map { partition, _ in
            "partition \(partition): expected \(committed[partition] ?? 0), found \(current[partition].map(String.init) ?? "another layout (re-laid by a run with another shard count)")"
        }
        throw IngestError(.partitionTakenOver, """
            \(source) shard \(shard): another process committed these partitions since this one took them \
            (\(moves.joined(separator: "; "))); it owns them now, so this process stops without writing. \
            Two processes must not ingest the same partitions at once (check that static --partitions do not overlap).
            """)
    }
}
