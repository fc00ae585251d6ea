import Postgres

/// Reads `ingest_offsets`: how far each shard has committed each partition of a source
/// (DESIGN invariant 2). Writing happens inside each flush transaction (`Flusher`).
public struct OffsetStore {
    /// Per partition, per shard: the next offset to store.
    public struct Offsets: Equatable, Sendable {
        public var byPartition: [Int32: [Int: Int64]]

        /// Where the source must resume a partition: the minimum over shards (0 when unknown).
        public func resumeOffset(partition: Int32, shardCount: Int) -> Int64 {
            guard let shards = byPartition[partition] else { return 0 }
            return (0..<shardCount).map { shards[$0] ?? 0 }.min() ?? 0
        }

        /// What `shard` already stored of `partition`: positions below this are skipped.
        public func committed(partition: Int32, shard: Int) -> Int64 {
            byPartition[partition]?[shard] ?? 0
        }
    }

    public let source: String

    public init(source: String) {
        self.source = source
    }

    public func load(on connection: PostgresConnection) throws -> Offsets {
        let rows = try connection.query(
            #"SELECT "partition", shard, next_offset FROM ingest_offsets WHERE source = $1"#, [source]).rows
        var offsets = Offsets(byPartition: [:])
        for row in rows {
            guard let partition = row[0].flatMap({ Int32($0) }), let shard = row[1].flatMap({ Int($0) }),
                  let next = row[2].flatMap({ Int64($0) }) else { continue }
            offsets.byPartition[partition, default: [:]][shard] = next
        }
        return offsets
    }

    /// Records that `shardCount` shards ingest `partitions` (a row at 0 for each shard that has
    /// none), so a run that stops before every shard committed is still recognised by the same
    /// shard count. Call after `checkShardCount`.
    public func claim(partitions: [Int32], shardCount: Int, on connection: PostgresConnection) throws {
        guard !partitions.isEmpty else { return }
        try connection.query("""
            INSERT INTO ingest_offsets (source, "partition", shard, next_offset)
            SELECT $1, p, s, 0 FROM unnest($2::int[]) AS p, generate_series(0, $3::int - 1) AS s
            ON CONFLICT (source, "partition", shard) DO NOTHING
            """, [source, "{" + partitions.map(String.init).joined(separator: ",") + "}", String(shardCount)])
    }

    /// Refuses a shard count that would break exactly-once: rows are routed by tenant to a shard,
    /// so a different count is safe only when every shard stopped at the same offset.
    public func checkShardCount(_ shardCount: Int, against offsets: Offsets) throws {
        for (partition, shards) in offsets.byPartition {
            let stored = Set(shards.keys)
            guard stored != Set(0..<shardCount) else { continue }
            if Set(shards.values).count > 1 {
                throw IngestError(.shardCountChanged, """
                    source \(source) partition \(partition) was ingested with \(stored.count) shard(s) that stopped at \
                    different offsets; re-run with --shards \(stored.count) to finish it first
                    """)
            }
        }
    }
}
