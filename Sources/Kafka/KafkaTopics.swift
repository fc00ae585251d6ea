import Synchronization

/// The topics a consumer reads, numbered in the order it meets them (the topics it was given
/// first, in their order; then those a pattern subscription finds), and the partition keys
/// built from them: one `Int32` per topic-partition, `topic number << 20 | partition`.
///
/// A consumer speaks partition keys wherever it names partitions (rebalances, positions, lag),
/// so its owner can treat the partitions of every topic alike. The first topic is number 0, so
/// with one topic a key is the partition number itself.
///
/// Thread-safe: the polling thread adds topics, others (flushers) read them.
public final class KafkaTopics: Sendable {
    /// Bits of a key that hold the partition: partitions up to 1,048,575.
    public static let partitionBits: Int32 = 20
    /// At most this many topics per consumer (the rest of the 31 bits of a positive key).
    public static let maximumCount = 2048
    private static let partitionMask: Int32 = (1 << partitionBits) - 1

    private let table = Mutex<(names: [String], numbers: [String: Int32])>(([], [:]))

    public init(_ topics: [String] = []) {
        add(topics)
    }

    /// Numbers `topics` (in this order) unless they have numbers already.
    public func add(_ topics: [String]) {
        for topic in topics { _ = number(of: topic) }
    }

    /// The key of `partition` of `topic` (numbering the topic if it is new); nil when the topic
    /// or the partition is beyond what a key holds.
    public func key(topic: String, partition: Int32) -> Int32? {
        guard (0...Self.partitionMask).contains(partition), let number = number(of: topic) else { return nil }
        return number << Self.partitionBits | partition
    }

    /// The topic of `key`.
    public func topic(of key: Int32) -> String {
        table.withLock { $0.names[Int(key >> Self.partitionBits)] }
    }

    /// The partition number of `key` within its topic.
    public static func partition(of key: Int32) -> Int32 { key & partitionMask }

    /// The topics numbered so far, in their order.
    public var names: [String] { table.withLock { $0.names } }

    private func number(of topic: String) -> Int32? {
        table.withLock { table in
            if let known = table.numbers[topic] { return known }
            guard table.names.count < Self.maximumCount else { return nil }
            let number = Int32(table.names.count)
            table.names.append(topic)
            table.numbers[topic] = number
            return number
        }
    }
}
