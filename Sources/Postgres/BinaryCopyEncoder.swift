import CLibPQ

/// Encodes rows in PostgreSQL's binary COPY format (docs: COPY, "Binary Format").
///
/// All integers are big-endian. A row is an int16 field count, then per field an int32 length
/// (-1 for NULL) and the value in the type's binary send format. Call `beginRow(fieldCount:)`
/// and then one `append...` per field, in column order.
///
/// The encoder only builds bytes; `BinaryCopyWriter` ships them in CopyData messages. It owns
/// its buffer, so it cannot be copied (pass it `inout`).
public struct BinaryCopyEncoder: ~Copyable {
    /// The buffer: owned by this value, grown by reallocation, freed in `deinit`.
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes encoded so far.
    public private(set) var count: Int

    /// `PGCOPY\n\377\r\n\0`, then int32 flags 0 and int32 header-extension length 0.
    public static let header: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00,
                                         0, 0, 0, 0, 0, 0, 0, 0]
    /// The file trailer: an int16 field count of -1.
    public static let trailer: [UInt8] = [0xFF, 0xFF]

    /// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 00:00 UTC).
    public static let postgresEpochOffsetMicroseconds: Int64 = 946_684_800_000_000

    public init(reservingCapacity capacity: Int = 64 * 1024) {
        self.capacity = Swift.max(capacity, 64)
        storage = .allocate(byteCount: self.capacity, alignment: 16)
        count = 0
    }

    deinit { storage.deallocate() }

    /// The encoded bytes, valid inside `body` only.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// A copy of the encoded bytes (for tests and diagnostics; the hot path uses `withUnsafeBytes`).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Empties the buffer, keeping its capacity.
    public mutating func removeAll() {
        count = 0
    }

    public mutating func appendHeader() { Self.header.withUnsafeBytes { appendRaw($0) } }
    public mutating func appendTrailer() { Self.trailer.withUnsafeBytes { appendRaw($0) } }

    public mutating func beginRow(fieldCount: Int) {
        appendBigEndian(Int16(truncatingIfNeeded: fieldCount))
    }

    public mutating func appendNull() { appendBigEndian(Int32(-1)) }

    // MARK: Fixed-size types

    /// `bool`: one byte.
    public mutating func appendBool(_ value: Bool) {
        appendBigEndian(Int32(1))
        appendBigEndian(UInt8(value ? 1 : 0))
    }

    /// `int4`.
    public mutating func appendInt32(_ value: Int32) {
        appendBigEndian(Int32(4))
        appendBigEndian(value)
    }

    /// `int8`.
    public mutating func appendInt64(_ value: Int64) {
        appendBigEndian(Int32(8))
        appendBigEndian(value)
    }

    /// `float8`.
    public mutating func appendDouble(_ value: Double) {
        appendBigEndian(Int32(8))
        appendBigEndian(value.bitPattern)
    }

    /// `uuid`: the 16 bytes in network order (as written in the text form).
    public mutating func appendUUID(_ uuid: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                             UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
        appendBigEndian(Int32(16))
        Swift.withUnsafeBytes(of: uuid) { appendRaw($0) }
    }

    /// `timestamptz` (or `timestamp`): microseconds since the Unix epoch, converted to
    /// PostgreSQL's epoch.
    public mutating func appendTimestamp(unixMicroseconds: Int64) {
        appendBigEndian(Int32(8))
        appendBigEndian(unixMicroseconds &- Self.postgresEpochOffsetMicroseconds)
    }

    /// `date`: days since 2000-01-01.
    public mutating func appendDate(unixDays: Int32) {
        appendBigEndian(Int32(4))
        appendBigEndian(unixDays &- 10_957)
    }

    /// `inet`: family (PostgreSQL's own: 2 = IPv4, 3 = IPv6), bits, is_cidr 0, length, address.
    public mutating func appendInet(_ address: InetAddress) {
        switch address {
        case .v4(let octets):
            appendBigEndian(Int32(8))
            appendBigEndian(UInt32(0x0220_0004))  // family 2 (IPv4), 32 bits, not cidr, 4 bytes
            Swift.withUnsafeBytes(of: octets) { appendRaw($0) }
        case .v6(let octets):
            appendBigEndian(Int32(20))
            appendBigEndian(UInt32(0x0380_0010))  // family 3 (IPv6), 128 bits, not cidr, 16 bytes
            Swift.withUnsafeBytes(of: octets) { appendRaw($0) }
        }
    }

    // MARK: Variable-length types

    /// `text` / `varchar`: the UTF-8 bytes. The caller guarantees valid UTF-8 without NUL.
    public mutating func appendText(_ utf8: UnsafeRawBufferPointer) {
        appendBigEndian(Int32(utf8.count))
        appendRaw(utf8)
    }

    public mutating func appendText(_ string: String) {
        var string = string
        string.withUTF8 { appendText(UnsafeRawBufferPointer($0)) }
    }

    /// `bytea`: the raw bytes.
    public mutating func appendBytes(_ raw: UnsafeRawBufferPointer) {
        appendBigEndian(Int32(raw.count))
        appendRaw(raw)
    }

    public mutating func appendBytes(_ raw: [UInt8]) {
        raw.withUnsafeBytes { appendBytes($0) }
    }

    /// `jsonb`: version byte 1, then the JSON text (the server parses and validates it).
    public mutating func appendJSONB(_ json: UnsafeRawBufferPointer) {
        appendBigEndian(Int32(json.count + 1))
        appendBigEndian(UInt8(1))
        appendRaw(json)
    }

    public mutating func appendJSONB(_ json: String) {
        var json = json
        json.withUTF8 { appendJSONB(UnsafeRawBufferPointer($0)) }
    }

    /// Appends rows encoded earlier by another encoder (bytes after the header, without trailer).
    public mutating func appendEncodedRows(_ rows: UnsafeRawBufferPointer) {
        appendRaw(rows)
    }

    /// Starts loading `count` bytes at `bytes` into the cache, to be appended soon: rows written
    /// by another thread a while ago are cold, and copying them one after another waits on
    /// memory for each.
    @inline(__always)
    public static func prefetch(_ bytes: UnsafeRawPointer, count: Int) {
        let end = UInt(bitPattern: bytes + count)
        var line = UInt(bitPattern: bytes) & ~63  // every cache line the bytes touch
        while line < end {
            audit_prefetch(UnsafeRawPointer(bitPattern: line))
            line += 64
        }
    }

    @inline(__always)
    private mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        storage.storeBytes(of: value.bigEndian, toByteOffset: count, as: T.self)
        count += MemoryLayout<T>.size
    }

    @inline(__always)
    private mutating func appendRaw(_ raw: UnsafeRawBufferPointer) {
        guard let source = raw.baseAddress, raw.count > 0 else { return }
        reserve(raw.count)
        (storage + count).copyMemory(from: source, byteCount: raw.count)
        count += raw.count
    }

    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(toAtLeast: count + extra) }
    }

    @inline(never)
    private mutating func grow(toAtLeast minimum: Int) {
        let newCapacity = Swift.max(minimum, capacity * 2)
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newStorage.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }
}
