/// A validated audit event (DESIGN.md, "The event on the wire").
///
/// Text fields are views into the message bytes or into the decoder's scratch space: valid only
/// until the decoder's next `decode` call. Encode or copy what you need before then.
public struct AuditEvent {
    public var id: UUIDValue
    public var tenantID: UUIDValue
    public var userID: UUIDValue?
    /// 1–100 characters, UTF-8, no NUL.
    public var action: UnsafeRawBufferPointer
    /// ≤ 100 characters.
    public var resourceType: UnsafeRawBufferPointer?
    /// ≤ 255 characters.
    public var resourceID: UnsafeRawBufferPointer?
    public var severity: Severity
    /// Microseconds since 1970-01-01 00:00 UTC.
    public var timestamp: Int64
    public var ipAddress: IPAddress?
    /// ≤ 1024 characters.
    public var userAgent: UnsafeRawBufferPointer?
    /// The metadata object's JSON text exactly as received (it goes to jsonb unchanged).
    public var metadata: UnsafeRawBufferPointer?

    /// Days since 1970-01-01 (UTC) of `timestamp`.
    public var unixDay: Int32 { Int32(timestamp.floorDivided(by: 86_400_000_000)) }

    /// The UTC calendar month of `timestamp`.
    public var month: Month { Month(unixDay: unixDay) }
}

/// `severity`, stored upper-case.
public enum Severity: UInt8, Sendable, CaseIterable {
    case debug, info, warning, error, critical

    public var name: String {
        switch self {
        case .debug: "DEBUG"
        case .info: "INFO"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    /// Matches `DEBUG`, `info`, `Warning`, ... (ASCII case-insensitive).
    init?(caseInsensitive bytes: UnsafeRawBufferPointer) {
        for severity in Severity.allCases {
            let name = severity.name.utf8
            guard name.count == bytes.count else { continue }
            if zip(name, bytes).allSatisfy({ $0 == ($1 & 0xDF) }) {  // ASCII upper-case
                self = severity
                return
            }
        }
        return nil
    }
}

/// A UUID as two big-endian halves: hashable, comparable and allocation-free.
public struct UUIDValue: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses the canonical 36-character form (either case).
    public init?(_ text: String) {
        var text = text
        guard let value = text.withUTF8({ UUIDValue(parsing: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = value
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits of either case).
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 36, let raw = bytes.baseAddress else { return nil }
        let text = raw.assumingMemoryBound(to: UInt8.self)
        guard text[8] == 0x2D, text[13] == 0x2D, text[18] == 0x2D, text[23] == 0x2D else { return nil }
        var invalid: UInt8 = 0
        @inline(__always) func hex(_ value: inout UInt64, from start: Int, count: Int) {
            for index in start..<(start + count) {
                let nibble = hexNibble(text[index])
                invalid |= nibble
                value = value << 4 | UInt64(nibble & 0x0F)
            }
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        hex(&high, from: 0, count: 8)
        hex(&high, from: 9, count: 4)
        hex(&high, from: 14, count: 4)
        hex(&low, from: 19, count: 4)
        hex(&low, from: 24, count: 12)
        guard invalid & 0xF0 == 0 else { return nil }
        self.init(high: high, low: low)
    }

    public static func < (lhs: UUIDValue, rhs: UUIDValue) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// The 16 bytes in network order.
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                       UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        unsafeBitCast((high.bigEndian, low.bigEndian), to: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                                              UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8).self)
    }

    /// The canonical lower-case form, written straight into the string's storage (a flush
    /// formats thousands of these).
    public var description: String {
        String(unsafeUninitializedCapacity: 36) { text in
            var position = 0
            func write(_ value: UInt64) {
                for nibble in 0..<16 {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        text[position] = 0x2D  // -
                        position += 1
                    }
                    let digit = UInt8(truncatingIfNeeded: value >> UInt64(60 - nibble * 4)) & 0x0F
                    text[position] = digit < 10 ? 0x30 + digit : 0x57 + digit  // 0-9, a-f
                    position += 1
                }
            }
            write(high)
            write(low)
            return 36
        }
    }
}

/// An IPv4 or IPv6 address in network byte order.
public enum IPAddress: Hashable, Sendable {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)
}

/// The value of a hex digit, or 0xFF (any bit of 0xF0 set) for anything else. Branch-light for
/// the UUID hot path.
@inline(__always)
func hexNibble(_ byte: UInt8) -> UInt8 {
    let digit = byte &- 0x30
    if digit < 10 { return digit }
    let letter = (byte | 0x20) &- 0x61
    if letter < 6 { return letter + 10 }
    return 0xFF
}

extension Int64 {
    /// Division rounding towards negative infinity.
    @inline(__always)
    public func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
