import CRdKafka

/// How far behind the broker this consumer is, per assigned partition.
extension KafkaConsumer {
    /// Per assigned partition (by key): the high watermark (from the last fetch) minus the next offset this
    /// consumer will read: the last message's offset + 1, else where the partition was assigned,
    /// else the low watermark. Partitions whose watermarks are not known yet are left out.
    public func lag() -> [Int32: Int64] {
        var lags: [Int32: Int64] = [:]
        for key in assignment {
            guard let (low, high) = watermarks(key), high >= 0 else { continue }
            lags[key] = max(0, high - nextOffset(key, low: low))
        }
        return lags
    }

    /// Where this consumer reads `partition` next: after the last message handed out, else where
    /// it was assigned, and never below the broker's low watermark (retention deleted the rest).
    func nextOffset(_ partition: Int32, low: Int64) -> Int64 {
        max(context.positions[partition] ?? context.assignedOffsets[partition].flatMap { $0 >= 0 ? $0 : nil } ?? low, low)
    }

    /// Per assigned partition, the lag asked of the brokers now (one ListOffsets request for
    /// the latest offsets of every partition, `rd_kafka_offsets_for_times` with -1): unlike
    /// `lag()`, whose high watermarks come from the last fetch and read 0 before a partition's
    /// first fetch answered. Empty when the brokers do not answer within `timeoutMilliseconds`.
    public func queryLag(timeoutMilliseconds: Int32 = 5_000) -> [Int32: Int64] {
        let keys = assignment
        guard !keys.isEmpty else { return [:] }
        let list = partitionList(keys) { _ in -1 }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_offsets_for_times(handle, list, timeoutMilliseconds) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [:] }
        var lags: [Int32: Int64] = [:]
        for (index, key) in partitionKeys(list).enumerated() {
            let element = list.pointee.elems[index]
            guard let key, element.err == RD_KAFKA_RESP_ERR_NO_ERROR, element.offset >= 0 else { continue }
            // The low watermark of the last fetch: what retention deleted is not lag.
            lags[key] = max(0, element.offset - nextOffset(key, low: watermarks(key)?.low ?? 0))
        }
        return lags
    }

    /// The low and high watermarks of the last fetch of a partition (by key).
    private func watermarks(_ key: Int32) -> (low: Int64, high: Int64)? {
        var low: Int64 = 0
        var high: Int64 = 0
        guard rd_kafka_get_watermark_offsets(handle, topics.topic(of: key), KafkaTopics.partition(of: key), &low, &high)
                == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return (low, high)
    }
}
