/// Encodes rows in PostgreSQL's binary COPY format (docs: COPY, "Binary Format").
///
/// All integers are big-endian. A row is an int16 field count, then per field an int32 length
/// (-1 for NULL) and the value in the type's binary send format. Call `beginRow(fieldCount:)`
/// and then one `append...` per field, in column order.
///
/// The encoder only builds bytes; `BinaryCopyWriter` ships them in CopyData messages.
public struct BinaryCopyEncoder: Sendable {
    /// The encoded bytes so far.
    public private(set) var bytes: [UInt8]

    /// `PGCOPY\n\377\r\n\0`, then int32 flags 0 and int32 header-extension length 0.
    public static let header: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00,
                                         0, 0, 0, 0, 0, 0, 0, 0]
    /// The file trailer: an int16 field count of -1.
    public static let trailer: [UInt8] = [0xFF, 0xFF]

    /// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 00:00 UTC).
    public static let postgresEpochOffsetMicroseconds: Int64 = 946_684_800_000_000

    public init(reservingCapacity capacity: Int = 64 * 1024) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    /// Empties the buffer, keeping its capacity.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }

    public mutating func appendHeader() { bytes.append(contentsOf: Self.header) }
    public mutating func appendTrailer() { bytes.append(contentsOf: Self.trailer) }

    public mutating func beginRow(fieldCount: Int) {
        appendBigEndian(Int16(truncatingIfNeeded: fieldCount))
    }

    public mutating func appendNull() { appendBigEndian(Int32(-1)) }

    // MARK: Fixed-size types

    /// `bool`: one byte.
    public mutating func appendBool(_ value: Bool) {
        appendBigEndian(Int32(1))
        bytes.append(value ? 1 : 0)
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
        withUnsafeBytes(of: uuid) { bytes.append(contentsOf: $0) }
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
            bytes.append(contentsOf: [2, 32, 0, 4])
            withUnsafeBytes(of: octets) { bytes.append(contentsOf: $0) }
        case .v6(let octets):
            appendBigEndian(Int32(20))
            bytes.append(contentsOf: [3, 128, 0, 16])
            withUnsafeBytes(of: octets) { bytes.append(contentsOf: $0) }
        }
    }

    // MARK: Variable-length types

    /// `text` / `varchar`: the UTF-8 bytes. The caller guarantees valid UTF-8 without NUL.
    public mutating func appendText(_ utf8: UnsafeRawBufferPointer) {
        appendBigEndian(Int32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    public mutating func appendText(_ string: String) {
        var string = string
        string.withUTF8 { appendText(UnsafeRawBufferPointer($0)) }
    }

    /// `bytea`: the raw bytes.
    public mutating func appendBytes(_ raw: UnsafeRawBufferPointer) {
        appendBigEndian(Int32(raw.count))
        bytes.append(contentsOf: raw)
    }

    public mutating func appendBytes(_ raw: [UInt8]) {
        raw.withUnsafeBytes { appendBytes($0) }
    }

    /// `jsonb`: version byte 1, then the JSON text (the server parses and validates it).
    public mutating func appendJSONB(_ json: UnsafeRawBufferPointer) {
        appendBigEndian(Int32(json.count + 1))
        bytes.append(1)
        bytes.append(contentsOf: json)
    }

    public mutating func appendJSONB(_ json: String) {
        var json = json
        json.withUTF8 { appendJSONB(UnsafeRawBufferPointer($0)) }
    }

    /// Appends rows encoded earlier by another encoder (bytes after the header, without trailer).
    public mutating func appendEncodedRows(_ rows: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: rows)
    }

    @inline(__always)
    private mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}
