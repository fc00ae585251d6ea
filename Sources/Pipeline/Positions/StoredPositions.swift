import AuditCore
import Logging
import Postgres

/// A shard's position in one partition: the next offset to store, and (files) the hash of the
/// bytes before it.
package struct Mark: Equatable, Sendable {
    package var next: Int64
    package var prefixHash: Int64?

    package init(next: Int64, prefixHash: Int64?) {
        self.next = next
        self.prefixHash = prefixHash
    }
}

/// What is stored of each partition of a source, as a run adopted it.
package struct StoredPositions: Sendable, Equatable {
    package var byPartition: [Int32: PartitionPositions] = [:]

    package init(byPartition: [Int32: PartitionPositions] = [:]) {
        self.byPartition = byPartition
    }

    /// Where the source must resume `partition` (0 when unknown).
    package func resumeOffset(partition: Int32) -> Int64 {
        byPartition[partition]?.resumeOffset ?? 0
    }
}

/// One partition's stored positions.
package struct PartitionPositions: Sendable, Equatable {
    /// Per shard of the current layout: the next offset it stores.
    package var shards: [Int64]
    /// Per shard: the prefix hash at that offset (files), nil otherwise.
    package var hashes: [Int64?]
    /// Layouts a shard-count change replaced, while some of their positions lie ahead.
    var retired: [RetiredLayout] = []
    /// The current layout's id: a flush's compare-and-set checks it.
    var layout: Int64 = 0

    package init(shards: [Int64], hashes: [Int64?]? = nil) {
        self.shards = shards
        self.hashes = hashes ?? shards.map { _ in nil }
    }

    /// The lowest position of any shard: everything below is stored.
    package var resumeOffset: Int64 { shards.min() ?? 0 }

    /// The prefix hash at `resumeOffset` (files).
    package var resumeHash: Int64? {
        guard let index = shards.indices.min(by: { shards[$0] < shards[$1] }) else { return nil }
        return hashes[index]
    }

    /// Every stored position past `resumeOffset` with the prefix hash stored beside it (files):
    /// the input must still hash the same there, or what was stored beyond the resume point
    /// came from other bytes.
    package var checkpointsAhead: [(offset: Int64, prefixHash: Int64)] {
        let low = resumeOffset
        var result: [(Int64, Int64)] = []
        for (offset, hash) in zip(shards, hashes) where offset > low { if let hash { result.append((offset, hash)) } }
        for layout in retired {
            for (offset, hash) in zip(layout.offsets, layout.hashes) where offset > low { if let hash { result.append((offset, hash)) } }
        }
        return result
    }

    package func committed(shard: Int) -> Int64 {
        shard < shards.count ? shards[shard] : 0
    }

    /// No message at or past this offset was stored by an earlier run, under any layout.
    var storedBelow: Int64 {
        max(shards.max() ?? 0, retired.map(\.furthest).max() ?? 0)
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
