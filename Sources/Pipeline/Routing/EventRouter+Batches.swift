/// Row batches on the producer side: the one each shard is filling, and handing them to the
/// shard's flusher (`FlusherPool`). Only the source thread calls these.
extension EventRouter {
    /// The batch `shard`'s rows go into, with room for `bytes` more: the one being filled, else
    /// (that one handed over) its kept buffer when large enough, a batch the flusher handed
    /// back, or a new one.
    func fillingBatch(for shard: Int, withRoomFor bytes: Int) -> RowBatch {
        if let batch = filling[shard] {
            if batch.hasRoom(forBytes: bytes) { return batch }
            if routingRecords {
                let grown = RowBatch(growing: batch, toFit: bytes)
                filling[shard] = grown
                return grown
            }
            handOver(shard)
            if let kept = filling[shard], kept.hasRoom(forBytes: bytes) { return kept }
        }
        let batch = newBatch(for: shard, neededBytes: bytes)
        filling[shard] = batch
        return batch
    }

    /// An empty batch: one the shard's flusher has handed back when it is large enough, else a new one.
    private func newBatch(for shard: Int, neededBytes: Int) -> RowBatch {
        if neededBytes <= RowBatch.defaultCapacity, let spent = pool.spentBatch(of: shard) {
            spent.reset()
            return spent
        }
        return RowBatch(maxRows: rowsPerBatch, neededBytes: neededBytes)
    }

    /// Hands every shard the rows encoded for it so far. A source calls this before it may wait
    /// for input, so rows never sit here while the flusher could be storing them.
    func handOverRows() {
        producer.check()
        for shard in filling.indices { handOver(shard) }
    }

    func handOver(_ shard: Int) {
        guard let batch = filling[shard], !batch.isEmpty else { return }
        if batch.usedBytes * 4 < batch.capacity {
            // Mostly empty (a watermark or a wait for input came first): send a copy that fits,
            // so a shard's bytes count what its rows hold, and keep filling this buffer.
            let fitted = RowBatch(fitting: batch)
            batch.reset()
            pool.send(.rows(fitted), to: shard)
        } else {
            filling[shard] = nil
            pool.send(.rows(batch), to: shard)
        }
    }

    /// Sends `item` after the rows encoded for `shard` before it.
    func push(_ item: ShardItem, to shard: Int) {
        // A message's records are checked before they are routed: none is dead-lettered alone.
        assert(!routingRecords, "an item pushed between the records of one message would split them")
        handOver(shard)
        pool.send(item, to: shard)
    }

    /// Hands every shard what it holds, then waits for all of it to commit (`FlusherPool.drain`).
    @discardableResult
    package func drain(deadline: ContinuousClock.Instant? = nil) -> Bool {
        producer.check()
        handOverRows()
        return pool.drain(deadline: deadline)
    }

    /// Hands over everything and ends the flushers (`FlusherPool.finish`).
    package func finish() throws {
        producer.check()
        publishSkipped()
        handOverRows()
        try pool.finish()
    }
}
