import Synchronization

/// What one shard holds, in bytes or in rows, against a limit (DESIGN invariant 8: memory is
/// bounded). The source thread adds what it hands over and waits while the limit is reached; the
/// flusher gives back what a committed flush released.
final class Budget: Sendable {
    /// What the shard may hold before the source waits.
    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Relaxed: the count steers waiting, it publishes no data (the ring does that).
    var heldCount: Int { held.load(ordering: .relaxed) }
    var isExhausted: Bool { heldCount >= limit }
    var remaining: Int { max(0, limit - heldCount) }

    func take(_ count: Int) { held.add(count, ordering: .relaxed) }
    func giveBack(_ count: Int) { held.subtract(count, ordering: .relaxed) }
}

extension ShardItem {
    /// The bytes this item keeps alive.
    var byteCount: Int {
        switch self {
        case .rows(let batch): batch.byteCount
        case .deadLetter(let deadLetter): deadLetter.rawMessage.count + (deadLetter.detail?.utf8.count ?? 0)
        case .watermark, .resetPartition, .flushNow, .end: 0
        }
    }

    /// The events this item brings.
    var rowCount: Int {
        if case .rows(let batch) = self { batch.rows.count } else { 0 }
    }
}
