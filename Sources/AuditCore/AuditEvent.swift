/// A validated audit event (docs/design.md, "The event on the wire").
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

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits of either case): eight digits
    /// at a time (`hexDigits`), three UUIDs per event on the hot path.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 36, let raw = bytes.baseAddress else { return nil }
        guard raw.load(fromByteOffset: 8, as: UInt8.self) == 0x2D, raw.load(fromByteOffset: 13, as: UInt8.self) == 0x2D,
              raw.load(fromByteOffset: 18, as: UInt8.self) == 0x2D, raw.load(fromByteOffset: 23, as: UInt8.self) == 0x2D
        else { return nil }
        @inline(__always) func eight(_ offset: Int) -> UInt64 { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        @inline(__always) func four(_ offset: Int) -> UInt64 {
            UInt64(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
        guard let a = Self.hexDigits(eight(0)), let b = Self.hexDigits(four(9) << 32 | four(14)),
              let c = Self.hexDigits(four(19) << 32 | four(24)), let d = Self.hexDigits(eight(28)) else { return nil }
        self.init(high: UInt64(a) << 32 | UInt64(b), low: UInt64(c) << 32 | UInt64(d))
    }

    /// The value of eight ASCII hex digits, the first in the most significant byte of `text`;
    /// nil unless all eight are 0-9, a-f or A-F. Each byte is tested against the ranges at once
    /// (no byte has its high bit set, so adding to one never carries into the next).
    @inline(__always)
    static func hexDigits(_ text: UInt64) -> UInt32? {
        let ones: UInt64 = 0x0101_0101_0101_0101, highBits: UInt64 = 0x8080_8080_8080_8080
        guard text & highBits == 0 else { return nil }
        @inline(__always) func within(_ value: UInt64, _ low: UInt64, _ high: UInt64) -> UInt64 {
            (value &+ (0x80 - low) &* ones) & ~(value &+ (0x7F - high) &* ones) & highBits
        }
        let digit = within(text, 0x30, 0x39), letter = within(text | 0x2020_2020_2020_2020, 0x61, 0x66)
        guard digit | letter == highBits else { return nil }
        // '0'-'9' are 0x30-0x39, 'a'-'f' 0x61-0x66 and 'A'-'F' 0x41-0x46: the low nibble, plus 9
        // for letters (bit 6).
        let nibbles = (text & 0x0F0F_0F0F_0F0F_0F0F) &+ ((text >> 6) & ones) &* 9
        let pairs = (nibbles >> 4 | nibbles) & 0x00FF_00FF_00FF_00FF
        let quads = (pairs >> 8 | pairs) & 0x0000_FFFF_0000_FFFF
        return UInt32(truncatingIfNeeded: quads >> 16 | quads)
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
