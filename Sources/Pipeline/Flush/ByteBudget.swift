import Synchronization

/// How many bytes of messages one shard holds (in its ring and its unflushed batch), so memory is
/// bounded in bytes, not only in items (DESIGN invariant 8). The source thread adds what it hands
/// over; the flusher gives back what a committed flush released.
final class ByteBudget: Sendable {
    /// Bytes the shard may hold before the source waits.
    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Relaxed: the count steers waiting, it publishes no data (the ring does that).
    var heldBytes: Int { held.load(ordering: .relaxed) }
    var isExhausted: Bool { heldBytes >= limit }

    func take(_ bytes: Int) { held.add(bytes, ordering: .relaxed) }
    func giveBack(_ bytes: Int) { held.subtract(bytes, ordering: .relaxed) }
}

extension ShardItem {
    /// The bytes this item keeps alive.
    var byteCount: Int {
        switch self {
        case .row(let row): row.storage.count
        case .deadLetter(let deadLetter): deadLetter.rawMessage.count + (deadLetter.detail?.utf8.count ?? 0)
        case .watermark, .resetPartition, .flushNow, .end: 0
        }
    }
}
