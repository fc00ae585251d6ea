import AuditCore
import Logging
import Postgres

/// Positions in PostgreSQL (DESIGN invariant 2): `ingest_offsets(source, partition, shard) ->
/// next_offset` for the current shard layout, and `ingest_offsets_retired` for layouts a
/// shard-count change replaced. Loads and adopts them for a run, and moves a shard's positions
/// with a compare-and-set inside each flush transaction.
package struct OffsetStore: Sendable {
    package let source: String

    package init(source: String) {
        self.source = source
    }

    // MARK: Reading and adopting

    /// Takes `partitions` for a run with `shardCount` shards and returns what is stored of them.
    ///
    /// A partition never seen gets a row at 0 for each shard. One stored with another shard count
    /// is re-laid (DESIGN invariant 7): the new shards start at the lowest old position, below
    /// which everything is stored; the old positions are kept in `ingest_offsets_retired` until
    /// every new shard has passed them, so positions the old layout stored above that point are
    /// skipped, not read twice. Nothing is refused: any count continues any source.
    ///
    /// One transaction under an advisory lock on the source: runs adopting the same source take
    /// turns, and a process still writing with the old layout finds its rows gone at its next
    /// compare-and-set and stops without writing.
    package func adopt(partitions: [Int32], shardCount: Int, on connection: PostgresConnection,
                      logger: Logger? = nil) throws -> StoredPositions {
        guard !partitions.isEmpty else { return StoredPositions() }
        let partitionList = Self.arrayLiteral(partitions)
        return try connection.transaction { connection in
            try connection.query("SELECT pg_advisory_xact_lock(hashtext($1))", [source])
            let current = try loadCurrent(partitionList, on: connection, forUpdate: true)
            var fresh: [Int32] = []
            for partition in partitions {
                guard let layout = current[partition] else {
                    fresh.append(partition)
                    continue
                }
                guard layout.count != shardCount || layout.contains(where: { $0.next < 0 }) else { continue }
                try relay(partition: partition, from: layout, to: shardCount, on: connection, logger: logger)
            }
            if !fresh.isEmpty {
                try connection.query("""
                    INSERT INTO ingest_offsets (source, "partition", shard, next_offset, layout)
                    SELECT $1, p, s, 0, txid_current() FROM unnest($2::int[]) AS p, generate_series(0, $3::int - 1) AS s
                    ON CONFLICT (source, "partition", shard) DO NOTHING
                    """, [source, Self.arrayLiteral(fresh), String(shardCount)])
            }
            var positions = StoredPositions()
            for (partition, layout) in try loadCurrent(partitionList, on: connection, forUpdate: false) {
                var adopted = PartitionPositions(shards: layout.map(\.next), hashes: layout.map(\.hash))
                adopted.layout = layout.first?.layout ?? 0
                positions.byPartition[partition] = adopted
            }
            try attachRetired(to: &positions, partitionList, on: connection)
            return positions
        }
    }

    /// What is stored of `partition`, read without taking it (nil when nothing is): for deciding
    /// what an input is before a run adopts it.
    package func stored(partition: Int32, on connection: PostgresConnection) throws -> PartitionPositions? {
        let partitionList = Self.arrayLiteral([partition])
        guard let layout = try loadCurrent(partitionList, on: connection, forUpdate: false)[partition]?.filter({ $0.next >= 0 }),
              !layout.isEmpty else { return nil }
        var positions = StoredPositions(byPartition: [partition: PartitionPositions(shards: layout.map(\.next), hashes: layout.map(\.hash))])
        try attachRetired(to: &positions, partitionList, on: connection, pruning: false)
        return positions.byPartition[partition]
    }

    private struct ShardRow {
        var next: Int64
        var hash: Int64?
        var layout: Int64 = 0
    }

    /// Per partition, the current layout's rows indexed by shard (a missing shard reads as -1).
    private func loadCurrent(_ partitionList: String, on connection: PostgresConnection,
                             forUpdate: Bool) throws -> [Int32: [ShardRow]] {
        let rows = try connection.query("""
            SELECT "partition", shard, next_offset, prefix_hash, layout FROM ingest_offsets
            WHERE source = $1 AND "partition" = ANY($2::int[]) ORDER BY 1, 2 \(forUpdate ? "FOR UPDATE" : "")
            """, [source, partitionList]).rows
        var result: [Int32: [ShardRow]] = [:]
        for row in rows {
            guard let partition = row[0].flatMap({ Int32($0) }), let shard = row[1].flatMap({ Int($0) }),
                  let next = row[2].flatMap({ Int64($0) }), shard >= 0 else { continue }
            var layout = result[partition, default: []]
            while layout.count <= shard { layout.append(ShardRow(next: -1, hash: nil)) }
            layout[shard] = ShardRow(next: next, hash: row[3].flatMap { Int64($0) }, layout: row[4].flatMap { Int64($0) } ?? 0)
            result[partition] = layout
        }
        return result
    }

    /// Replaces a partition's layout with `shardCount` shards starting at its lowest position.
    private func relay(partition: Int32, from layout: [ShardRow], to shardCount: Int, on connection: PostgresConnection,
                       logger: Logger?) throws {
        let known = layout.filter { $0.next >= 0 }
        let low = known.min { $0.next < $1.next } ?? ShardRow(next: 0, hash: nil)
        let high = known.map(\.next).max() ?? 0
        if high > low.next {
            // Some old shards went further: keep their positions to skip what they stored.
            try connection.query("""
                INSERT INTO ingest_offsets_retired AS r (source, "partition", shard_count, shard, next_offset, prefix_hash)
                SELECT source, "partition", $3, shard, next_offset, prefix_hash FROM ingest_offsets
                WHERE source = $1 AND "partition" = $2
                ON CONFLICT (source, "partition", shard_count, shard) DO UPDATE
                    SET next_offset = greatest(r.next_offset, EXCLUDED.next_offset),
                        prefix_hash = CASE WHEN EXCLUDED.next_offset > r.next_offset THEN EXCLUDED.prefix_hash ELSE r.prefix_hash END,
                        retired_at = now()
                """, [source, String(partition), String(layout.count)])
        }
        try connection.query(#"DELETE FROM ingest_offsets WHERE source = $1 AND "partition" = $2"#, [source, String(partition)])
        try connection.query("""
            INSERT INTO ingest_offsets (source, "partition", shard, next_offset, prefix_hash, layout)
            SELECT $1, $2, s, $3, $4, txid_current() FROM generate_series(0, $5::int - 1) AS s
            """, [source, String(partition), String(low.next), low.hash.map(String.init), String(shardCount)])
        logger?.notice("shard count changed: new shards start where every old shard had stored everything below", metadata: [
            LogKey.source: "\(source)", LogKey.partition: "\(partition)", LogKey.oldShards: "\(layout.count)", LogKey.newShards: "\(shardCount)",
            LogKey.start: "\(low.next)", LogKey.oldFurthest: "\(high)",
        ])
    }

    /// Loads the retired layouts still needed, deleting (when `pruning`) those every current
    /// shard has passed.
    private func attachRetired(to positions: inout StoredPositions, _ partitionList: String,
                               on connection: PostgresConnection, pruning: Bool = true) throws {
        let rows = try connection.query("""
            SELECT "partition", shard_count, shard, next_offset, prefix_hash FROM ingest_offsets_retired
            WHERE source = $1 AND "partition" = ANY($2::int[]) ORDER BY 1, 2, 3
            """, [source, partitionList]).rows
        guard !rows.isEmpty else { return }
        var layouts: [Int32: [Int: RetiredLayout]] = [:]
        for row in rows {
            guard let partition = row[0].flatMap({ Int32($0) }), let count = row[1].flatMap({ Int($0) }),
                  let shard = row[2].flatMap({ Int($0) }), let next = row[3].flatMap({ Int64($0) }),
                  count > 0, (0..<count).contains(shard) else { continue }
            layouts[partition, default: [:]][count, default: RetiredLayout(router: ShardRouter(shardCount: count),
                                                                          offsets: Array(repeating: 0, count: count))]
                .set(shard: shard, next: next, prefixHash: row[4].flatMap { Int64($0) })
        }
        for (partition, byCount) in layouts {
            let low = positions.byPartition[partition]?.resumeOffset ?? 0
            for (count, layout) in byCount.sorted(by: { $0.key < $1.key }) {
                if layout.furthest <= low {
                    guard pruning else { continue }
                    try connection.query(
                        #"DELETE FROM ingest_offsets_retired WHERE source = $1 AND "partition" = $2 AND shard_count = $3"#,
                        [source, String(partition), String(count)])
                } else {
                    positions.byPartition[partition]?.retired.append(layout)
                }
            }
        }
    }

    static func arrayLiteral<Value: BinaryInteger>(_ values: [Value]) -> String {
        "{" + values.map { String($0) }.joined(separator: ",") + "}"
    }

    /// Per partition, the lowest position any shard stored.
    func lowestPositions(partitions: [Int32], on connection: PostgresConnection) throws -> [Int32: Int64] {
        let rows = try connection.query("""
            SELECT "partition", min(next_offset) FROM ingest_offsets WHERE source = $1 AND "partition" = ANY($2::int[]) GROUP BY 1
            """, [source, Self.arrayLiteral(partitions)]).rows
        var positions: [Int32: Int64] = [:]
        for row in rows {
            guard let partition = row[0].flatMap({ Int32($0) }), let next = row[1].flatMap({ Int64($0) }) else { continue }
            positions[partition] = next
        }
        return positions
    }
}
