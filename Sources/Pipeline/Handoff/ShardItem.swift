import AuditCore
import Dispatch

/// What the decoding thread hands a flusher shard through its ring.
enum ShardItem {
    /// Decoded events, already in binary COPY form, in the order they were read.
    case rows(RowBatch)
    /// A message that will not be stored in audit_log.
    case deadLetter(DeadLetter)
    /// Every position below `next` of `partition` that belongs to this shard has been sent.
    case watermark(partition: Int32, next: Mark)
    /// The partition was (re)assigned: what this shard has committed of it, from ingest_offsets.
    case resetPartition(partition: Int32, committed: Int64, layout: Int64)
    /// Flush what is pending now, then signal (a rebalance takes partitions away).
    case flushNow(DispatchSemaphore)
    /// The source has no more messages: flush everything and stop.
    case end
}

/// One audit_log row: its key and position, and where its bytes are. The bytes (the COPY row,
/// then the raw message, kept in case PostgreSQL refuses the row and it must be dead-lettered)
/// live in the buffer of the `RowBatch` the row came in, which the flusher keeps until the row is
/// flushed. A plain value: sorting and copying rows costs no reference counting.
struct EncodedRow {
    var partition: Int32
    /// Which record of its message it is (`DeadLetter.record`): 0 for a message of one event.
    /// Beside `partition`, in the padding before `offset`: a row is no larger for it.
    var record: Int32
    var offset: Int64
    /// Where the source goes on after this message.
    var next: Mark
    var tenantID: UUIDValue
    /// Microseconds since 1970-01-01 UTC.
    var timestamp: Int64
    /// The row's COPY bytes, followed by the raw message, inside its batch's buffer.
    var bytes: UnsafeRawPointer
    let rowLength: Int
    let rawLength: Int

    var rowBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: rowLength) }
    var rawMessage: [UInt8] { Array(UnsafeRawBufferPointer(start: bytes + rowLength, count: rawLength)) }
    var unixDay: Int32 { Int32(timestamp.floorDivided(by: 86_400_000_000)) }
    var month: Month { Month(unixDay: unixDay) }
}

/// One audit_dead_letter row.
package struct DeadLetter: Sendable {
    /// Position in the source (Kafka partition and offset; partition 0 and line number for files).
    package var partition: Int32
    package var offset: Int64
    /// Where the source goes on after this message.
    var next: Mark
    /// 0: the whole message. n: the message's nth record (a delivery file holds many; each that
    /// cannot be stored is a dead letter of its own, its siblings are stored).
    package var record: Int32 = 0
    package var tenantID: UUIDValue?
    /// The message as received (the first KiB of an over-long line).
    package var rawMessage: [UInt8]
    /// A `Rejection` reason, or "rejected by database".
    package var reason: String
    package var detail: String?
    /// When PostgreSQL refused the row.
    package var sqlState: String?
}
