import Logging
import Postgres

/// The positions of a run whose partitions may be stored under several sources
/// (`SourceStreams`): each call goes to the `OffsetStore` of every source concerned, with the
/// partitions' stored numbers, and answers in the engine's numbers. With one source it is that
/// source's store.
struct StreamOffsets: Sendable {
    let streams: SourceStreams

    /// `OffsetStore.adopt` for each source of `partitions` (one transaction per source: each
    /// adoption stands on its own, and adopting again is harmless).
    func adopt(partitions: [Int32], shardCount: Int, on connection: PostgresConnection,
               logger: Logger? = nil) throws -> StoredPositions {
        var adopted = StoredPositions()
        for (source, members) in streams.bySource(partitions) {
            let stored = try OffsetStore(source: source).adopt(partitions: members.map(\.stored), shardCount: shardCount,
                                                                on: connection, logger: logger)
            for member in members { adopted.byPartition[member.engine] = stored.byPartition[member.stored] }
        }
        return adopted
    }

    /// `OffsetStore.advance` (the compare-and-set of a flush) for each source whose partitions
    /// moved, in the flush's transaction. False, having written nothing, when every one was
    /// already where `pending` puts it (an earlier attempt committed); throws when another
    /// process owns a partition, or when only some sources were already there (which only
    /// another process can have done).
    func advance(shard: Int, from committed: [Int32: Int64], to pending: [Int32: Mark], layouts: [Int32: Int64],
                 on connection: PostgresConnection) throws -> Bool {
        let moved = pending.keys.filter { committed[$0] != pending[$0]?.next }
        var outcomes: [String: Bool] = [:]
        for (source, members) in streams.bySource(moved) {
            func stored<Value>(_ values: [Int32: Value]) -> [Int32: Value] {
                Dictionary(uniqueKeysWithValues: members.compactMap { member in values[member.engine].map { (member.stored, $0) } })
            }
            outcomes[source] = try OffsetStore(source: source).advance(
                shard: shard, from: stored(committed), to: stored(pending), layouts: stored(layouts), on: connection)
        }
        guard Set(outcomes.values).count > 1 else { return outcomes.values.first ?? true }
        throw IngestError(.partitionTakenOver, """
            shard \(shard): the positions of \(outcomes.filter { !$0.value }.keys.sorted().joined(separator: ", ")) were \
            already where this batch puts them while others were not: another process committed them, so this \
            process stops without writing
            """)
    }

    /// Per partition, the lowest position any shard stored.
    func lowestPositions(partitions: [Int32], on connection: PostgresConnection) throws -> [Int32: Int64] {
        var lowest: [Int32: Int64] = [:]
        for (source, members) in streams.bySource(partitions) {
            let stored = try OffsetStore(source: source).lowestPositions(partitions: members.map(\.stored), on: connection)
            for member in members { lowest[member.engine] = stored[member.stored] }
        }
        return lowest
    }
}
