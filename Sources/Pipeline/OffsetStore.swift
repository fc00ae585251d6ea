import AuditCore
import Logging
import Postgres

/// Positions in PostgreSQL (DESIGN invariant 2): `ingest_offsets(source, partition, shard) ->
/// next_offset` for the current shard layout, and `ingest_offsets_retired` for layouts a
/// shard-count change replaced. Loads and adopts them for a run, and moves a shard's positions
/// with a compare-and-set inside each flush transaction.
public struct OffsetStore: Sendable {
    public let source: String

    public init(source: String) {
        self.source = source
    }

    // MARK: Reading and adopting

    /// Sources whose name is `baseName` or `baseName~N` (a file whose first line matched and
    /// that was ingested anew after an edit), with what each stored of partition 0.
    public func generations(of baseName: String, on connection: PostgresConnection) throws -> [(source: String, resume: FileSource.ResumePoint)] {
        let rows = try connection.query("""
            SELECT DISTINCT ON (source) source, next_offset, prefix_hash FROM ingest_offsets
            WHERE (source = $1 OR source LIKE $2) AND "partition" = 0
            ORDER BY source, next_offset, shard
            """, [baseName, baseName + "~%"]).rows
        return rows.compactMap { row in
            guard let source = row[0], let next = row[1].flatMap({ Int64($0) }) else { return nil }
            return (source, FileSource.ResumePoint(offset: next, prefixHash: row[2].flatMap { Int64($0) }))
        }
    }

    /// A name for a new generation of `baseName`: `baseName~N` after the highest one stored.
    public func nextGeneration(of baseName: String, on connection: PostgresConnection) throws -> String {
        let highest = try generations(of: baseName, on: connection).compactMap { generation -> Int? in
            generation.source == baseName ? 1 : generation.source.split(separator: "~").last.flatMap { Int($0) }
        }.max() ?? 1
        return "\(baseName)~\(highest + 1)"
    }

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
    public func adopt(partitions: [Int32], shardCount: Int, on connection: PostgresConnection,
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
            "source": "\(source)", "partition": "\(partition)", "old_shards": "\(layout.count)", "new_shards": "\(shardCount)",
            "start": "\(low.next)", "old_furthest": "\(high)",
        ])
    }

    /// Loads the retired layouts still needed, deleting those every current shard has passed.
    private func attachRetired(to positions: inout StoredPositions, _ partitionList: String,
                               on connection: PostgresConnection) throws {
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
                    try connection.query(
                        #"DELETE FROM ingest_offsets_retired WHERE source = $1 AND "partition" = $2 AND shard_count = $3"#,
                        [source, String(partition), String(count)])
                } else {
                    positions.byPartition[partition]?.retired.append(layout)
                }
            }
        }
    }

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

    static func arrayLiteral<Value: BinaryInteger>(_ values: [Value]) -> String {
        "{" + values.map { String($0) }.joined(separator: ",") + "}"
    }
}

/// A shard's position in one partition: the next offset to store, and (files) the hash of the
/// bytes before it.
struct Mark: Equatable {
    var next: Int64
    var prefixHash: Int64?
}

/// What is stored of each partition of a source, as a run adopted it.
public struct StoredPositions: Sendable, Equatable {
    public var byPartition: [Int32: PartitionPositions] = [:]

    public init(byPartition: [Int32: PartitionPositions] = [:]) {
        self.byPartition = byPartition
    }

    /// Where the source must resume `partition` (0 when unknown).
    public func resumeOffset(partition: Int32) -> Int64 {
        byPartition[partition]?.resumeOffset ?? 0
    }
}

/// One partition's stored positions.
public struct PartitionPositions: Sendable, Equatable {
    /// Per shard of the current layout: the next offset it stores.
    public var shards: [Int64]
    /// Per shard: the prefix hash at that offset (files), nil otherwise.
    public var hashes: [Int64?]
    /// Layouts a shard-count change replaced, while some of their positions lie ahead.
    var retired: [RetiredLayout] = []
    /// The current layout's id: a flush's compare-and-set checks it.
    var layout: Int64 = 0

    public init(shards: [Int64], hashes: [Int64?]? = nil) {
        self.shards = shards
        self.hashes = hashes ?? shards.map { _ in nil }
    }

    /// The lowest position of any shard: everything below is stored.
    public var resumeOffset: Int64 { shards.min() ?? 0 }

    /// The prefix hash at `resumeOffset` (files).
    public var resumeHash: Int64? {
        guard let index = shards.indices.min(by: { shards[$0] < shards[$1] }) else { return nil }
        return hashes[index]
    }

    /// Every stored position past `resumeOffset` with the prefix hash stored beside it (files):
    /// the input must still hash the same there, or what was stored beyond the resume point
    /// came from other bytes.
    public var checkpointsAhead: [(offset: Int64, prefixHash: Int64)] {
        let low = resumeOffset
        var result: [(Int64, Int64)] = []
        for (offset, hash) in zip(shards, hashes) where offset > low { if let hash { result.append((offset, hash)) } }
        for layout in retired {
            for (offset, hash) in zip(layout.offsets, layout.hashes) where offset > low { if let hash { result.append((offset, hash)) } }
        }
        return result
    }

    public func committed(shard: Int) -> Int64 {
        shard < shards.count ? shards[shard] : 0
    }

    /// True when the message at `offset` (routed to `shard` now, by `tenantID` when it has one)
    /// was stored or dead-lettered by an earlier run, under this layout or a retired one.
    @inline(__always)
    func isStored(offset: Int64, shard: Int, tenantID: UUIDValue?) -> Bool {
        if offset < committed(shard: shard) { return true }
        for layout in retired where offset < layout.furthest {
            let old = layout.router.shard(tenantID: tenantID, offset: offset)
            if offset < layout.offsets[old] { return true }
        }
        return false
    }
}

/// A replaced shard layout: how it routed and how far each of its shards got.
struct RetiredLayout: Sendable, Equatable {
    var router: ShardRouter
    var offsets: [Int64]
    /// Per shard: the prefix hash at its offset (files).
    var hashes: [Int64?]
    var furthest: Int64

    init(router: ShardRouter, offsets: [Int64]) {
        self.router = router
        self.offsets = offsets
        hashes = offsets.map { _ in nil }
        furthest = offsets.max() ?? 0
    }

    mutating func set(shard: Int, next: Int64, prefixHash: Int64?) {
        offsets[shard] = next
        hashes[shard] = prefixHash
        furthest = offsets.max() ?? 0
    }
}
