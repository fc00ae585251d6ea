import CRdKafka
import Foundation

/// The consumer's partitions in librdkafka's terms: lists built from and read into partition
/// keys, the current assignment, and pausing and resuming fetches.
extension KafkaConsumer {
    /// A librdkafka list of the partitions of `keys`, each at `offset(key)` when given.
    /// The caller destroys it.
    func partitionList(_ keys: some Collection<Int32>, offset: ((Int32) -> Int64)? = nil)
        -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(keys.count))!
        for key in keys {
            let element = rd_kafka_topic_partition_list_add(list, topics.topic(of: key), KafkaTopics.partition(of: key))!
            if let offset { element.pointee.offset = offset(key) }
        }
        return list
    }

    /// The partition keys of a librdkafka list, in its order (nil for an entry beyond what a key
    /// holds: more than `KafkaTopics.maximumCount` topics).
    func partitionKeys(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [Int32?] {
        (0..<Int(list.pointee.cnt)).map { index in
            let element = list.pointee.elems[index]
            return topics.key(topic: String(cString: element.topic), partition: element.partition)
        }
    }

    /// Stops fetching the assigned partitions (backpressure) while `poll` keeps serving the group
    /// protocol, so a long stall downstream does not exceed max.poll.interval.ms. librdkafka
    /// drops what it prefetched for them and, on `resume`, fetches again from the position after
    /// the last message `poll` handed out: nothing is skipped or repeated.
    public func pause() {
        withAssignmentList { rd_kafka_pause_partitions(handle, $0) }
    }

    /// Fetches the assigned partitions again after `pause`.
    public func resume() {
        withAssignmentList { rd_kafka_resume_partitions(handle, $0) }
    }

    /// The partition keys currently assigned.
    public var assignment: [Int32] {
        withAssignmentList { partitionKeys($0).compactMap { $0 }.sorted() } ?? []
    }

    /// Calls `body` with librdkafka's current assignment list (nil when it cannot be read).
    @discardableResult
    private func withAssignmentList<T>(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> T) -> T? {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return nil }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return body(list)
    }
}
