/// Lag in seconds per partition, from Kafka message timestamps: how long the oldest unread
/// message has waited, at most. 0 when a partition is caught up; else the time since the last
/// message read was produced, or since the partition was last seen caught up when that is
/// shorter (so an idle partition's first new message does not count the idle time). A partition
/// with a lag and no message read yet has no figure. Times are milliseconds since the Unix epoch;
/// a producer clock ahead of ours gives 0, not a negative lag.
struct PartitionLagTimes {
    /// Per partition: the Kafka timestamp of the last message read.
    private var lastRead: [Int32: Int64] = [:]
    /// Per partition: when it was last seen caught up.
    private var caughtUpAt: [Int32: Int64] = [:]

    /// The last message read from `partition` has Kafka timestamp `timestamp`.
    mutating func read(partition: Int32, timestamp: Int64) {
        lastRead[partition] = timestamp
    }

    /// Drops partitions this consumer no longer reads.
    mutating func forget(_ partitions: [Int32]) {
        for partition in partitions {
            lastRead[partition] = nil
            caughtUpAt[partition] = nil
        }
    }

    /// Seconds per partition of `lag` (messages behind, per partition) at `now`.
    mutating func seconds(lag: [Int32: Int64], now: Int64) -> [Int32: Double] {
        var seconds: [Int32: Double] = [:]
        for (partition, messages) in lag {
            if messages == 0 {
                caughtUpAt[partition] = now
                seconds[partition] = 0
            } else if let last = lastRead[partition] {
                let since = max(last, caughtUpAt[partition] ?? .min)  // the later: the shorter wait
                seconds[partition] = Double(max(0, now - since)) / 1000
            }
        }
        return seconds
    }
}
