/// One shard's positions in memory, per partition: where it will be once its batch commits
/// (`pending`), where it is in ingest_offsets (`committed`), and the layout id its compare-and-set
/// checks (`layouts`). Owned by the shard's flusher thread.
struct ShardPositions {
    private(set) var pending: [Int32: Mark] = [:]
    private(set) var committed: [Int32: Int64] = [:]
    private(set) var layouts: [Int32: Int64] = [:]

    /// Moves `partition` forward to `next` (never back). Returns true when it moved.
    @inline(__always)
    mutating func advance(_ partition: Int32, to next: Mark) -> Bool {
        guard next.next > pending[partition]?.next ?? 0 else { return false }
        pending[partition] = next
        return true
    }

    /// The partition was (re)assigned: start from what PostgreSQL holds.
    mutating func reset(_ partition: Int32, committed position: Int64, layout: Int64) {
        pending[partition] = Mark(next: position, prefixHash: nil)
        committed[partition] = position
        layouts[partition] = layout
    }

    /// True when some partition moved since the last commit.
    var moved: Bool { pending.contains { committed[$0.key] != $0.value.next } }

    /// The batch committed: pending is stored now.
    mutating func commit() { committed = pending.mapValues(\.next) }
}
