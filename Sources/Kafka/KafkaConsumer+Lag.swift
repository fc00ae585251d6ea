import CRdKafka

/// How far behind the broker this consumer is, per assigned partition.
extension KafkaConsumer {
    /// Per assigned partition: the high watermark (from the last fetch) minus the next offset this
    /// consumer will read: the last message's offset + 1, else where the partition was assigned,
    /// else the low watermark. Partitions whose watermarks are not known yet are left out.
    public func lag() -> [Int32: Int64] {
        var lags: [Int32: Int64] = [:]
        for partition in assignment {
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { continue }
            lags[partition] = max(0, high - nextOffset(partition, low: low))
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
        let partitions = assignment
        guard !partitions.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(partitions.count)) else { return [:] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = -1 }
        guard rd_kafka_offsets_for_times(handle, list, timeoutMilliseconds) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [:] }
        var lags: [Int32: Int64] = [:]
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR, element.offset >= 0 else { continue }
            let partition = element.partition
            // The low watermark of the last fetch: what retention deleted is not lag.
            var low: Int64 = 0
            var high: Int64 = 0
            _ = rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high)
            lags[partition] = max(0, element.offset - nextOffset(partition, low: low))
        }
        return lags
    }
}
