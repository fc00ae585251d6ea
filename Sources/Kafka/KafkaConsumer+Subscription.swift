import CRdKafka

extension KafkaConsumer {
    /// Joins the group for the subscribed topics, or for every topic the pattern matches.
    func subscribe() throws {
        let names: [String] = switch subscription {
        case .topics(let names): names
        case .pattern: [subscription.description]  // librdkafka reads a leading ^ as a regular expression
        }
        let list = rd_kafka_topic_partition_list_new(Int32(names.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for name in names { rd_kafka_topic_partition_list_add(list, name, RD_KAFKA_PARTITION_UA) }
        let error = rd_kafka_subscribe(handle, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error, topic: subscription.description) }
    }

    /// The partition keys a static assignment reads: the partitions asked for, of every topic.
    /// Throws for a pattern (it needs the group to find topics) and for a partition a topic lacks.
    func staticPartitionKeys(_ assignment: Assignment) throws -> [Int32] {
        guard case .topics(let names) = subscription else {
            throw KafkaError(configuration: "a static assignment (--partitions) needs topics by name, not a pattern")
        }
        var keys: [Int32] = []
        for topic in names {
            let count = try partitionCount(topic)
            var partitions = (0..<Int32(count)).map { $0 }
            if case .partitions(let asked) = assignment {
                if let missing = asked.first(where: { $0 >= count }) {
                    throw KafkaError(code: RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
                                     message: "partition \(missing) does not exist: \(topic) has \(count) partition(s), 0-\(count - 1)",
                                     topic: topic, partition: missing)
                }
                partitions = asked
            }
            for partition in partitions {
                guard let key = topics.key(topic: topic, partition: partition) else {
                    throw KafkaError(configuration: "\(topic) partition \(partition): more partitions than a consumer reads (2^20)")
                }
                keys.append(key)
            }
        }
        return keys
    }

    /// A topic's partition count, from the cluster's metadata (waits up to 10 s).
    private func partitionCount(_ topic: String) throws -> Int {
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(code: rd_kafka_last_error(), topic: topic)
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, 10_000)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(code: error, topic: topic) }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { throw KafkaError(code: RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, topic: topic) }
        let description = metadata.pointee.topics[0]
        guard description.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: description.err, topic: topic) }
        return Int(description.partition_cnt)
    }
}
