import AuditCore

/// Rows the decoding thread encoded for one shard, handed to its flusher together: one buffer
/// holds every row's COPY bytes and raw message, so an event costs no allocation of its own and
/// the ring carries one item per batch instead of one per event.
///
/// The source thread fills it, then pushes it through the shard's ring and does not touch it
/// while the flusher holds it. It must outlive its rows (`EncodedRow.bytes` points into it): the
/// flusher keeps each batch until the rows it brought are flushed, then hands it back through
/// the shard's `spentBatches` ring for the source to fill again.
///
/// Only the source thread changes it (`append`, `reset`); debug builds check that (`filler`).
final class RowBatch: @unchecked Sendable {  // one thread at a time: filled, then handed over whole
    /// Bytes a batch holds unless one event needs more.
    static let defaultCapacity = 128 << 10

    private(set) var rows: [EncodedRow] = []
    /// Records of the batch's messages that cannot be stored (`DeadLetter.record` > 0): they
    /// travel with their siblings' rows, so one flush commits a message's part of this shard whole.
    var deadLetters: [DeadLetter] = []
    /// Rows after which the batch is handed over even if its buffer has room.
    let maxRows: Int
    /// The buffer's size: what this batch keeps alive, counted against the shard's byte budget.
    let capacity: Int
    private(set) var usedBytes = 0
    private let buffer: UnsafeMutableRawPointer
    /// The thread that fills it, in debug builds.
    private let filler = ThreadConfinement()

    /// - Parameter neededBytes: the first row's bytes (row and raw message), when they exceed the default.
    init(maxRows: Int, neededBytes: Int = 0) {
        self.maxRows = max(1, maxRows)
        capacity = max(Self.defaultCapacity, neededBytes)
        buffer = .allocate(byteCount: capacity, alignment: 16)
        rows.reserveCapacity(min(self.maxRows, 256))
    }

    /// A copy of `other` in a buffer just large enough for its rows.
    convenience init(fitting other: RowBatch) {
        self.init(copying: other, capacity: other.usedBytes, maxRows: other.rows.count)
    }

    /// A copy of `other` with room for `bytes` more: the records of one message grow their
    /// shard's batch rather than being split over two (`EventRouter.keepingRecordsTogether`).
    convenience init(growing other: RowBatch, toFit bytes: Int) {
        self.init(copying: other, capacity: max(2 * other.capacity, other.usedBytes + bytes), maxRows: other.maxRows)
    }

    private init(copying other: RowBatch, capacity: Int, maxRows: Int) {
        self.maxRows = max(1, maxRows)
        self.capacity = capacity
        buffer = .allocate(byteCount: max(1, capacity), alignment: 16)
        buffer.copyMemory(from: other.buffer, byteCount: other.usedBytes)
        usedBytes = other.usedBytes
        deadLetters = other.deadLetters
        rows = other.rows.map { row in
            var moved = row
            moved.bytes = UnsafeRawPointer(buffer + UnsafeRawPointer(other.buffer).distance(to: row.bytes))
            return moved
        }
    }

    /// What this batch keeps alive: its buffer and its row list.
    var byteCount: Int {
        capacity + rows.capacity * MemoryLayout<EncodedRow>.stride + deadLetters.reduce(0) { $0 + $1.rawMessage.count }
    }

    /// True when it holds nothing to hand over.
    var isEmpty: Bool { rows.isEmpty && deadLetters.isEmpty }

    deinit {
        buffer.deallocate()
    }

    var isFull: Bool { rows.count >= maxRows }

    /// Empties the batch for reuse, keeping its buffer.
    func reset() {
        filler.check()
        rows.removeAll(keepingCapacity: true)
        deadLetters.removeAll()
        usedBytes = 0
    }

    func hasRoom(forBytes count: Int) -> Bool { usedBytes + count <= capacity }

    /// Copies the row's COPY bytes and its raw message into the buffer and records the row.
    /// The caller checks `hasRoom` first.
    func append(partition: Int32, offset: Int64, next: Mark, tenantID: UUIDValue, timestamp: Int64, record: Int32 = 0,
                row: UnsafeRawBufferPointer, raw: UnsafeRawBufferPointer) {
        filler.check()
        precondition(hasRoom(forBytes: row.count + raw.count), "RowBatch: no room for the row")
        let start = buffer + usedBytes
        if let base = row.baseAddress { start.copyMemory(from: base, byteCount: row.count) }
        if let base = raw.baseAddress { (start + row.count).copyMemory(from: base, byteCount: raw.count) }
        usedBytes += row.count + raw.count
        rows.append(EncodedRow(partition: partition, record: record, offset: offset, next: next, tenantID: tenantID, timestamp: timestamp,
                               bytes: UnsafeRawPointer(start), rowLength: row.count, rawLength: raw.count))
    }
}
