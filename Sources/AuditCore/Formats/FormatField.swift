import Foundation

/// Reading fields of a decoded foreign record.
enum FormatField {
    /// The value at a dot path, if it is a string (or a number, as text).
    static func string(_ record: [String: Any], _ path: [String]) -> String? {
        var value: Any? = record
        for key in path { value = (value as? [String: Any])?[key] }
        if let text = value as? String { return text.isEmpty ? nil : text }
        if let number = value as? NSNumber { return number.stringValue }
        return nil
    }

    static func string(_ record: [String: Any], _ path: String) -> String? {
        string(record, path.split(separator: ".").map(String.init))
    }

    /// The value at a dot path as an integer: a JSON number that a 64-bit integer holds (a
    /// fraction is cut off), or the text of one. Nil for anything else: a number too large or too
    /// small gives nil, never a trap (`NSNumber.intValue` traps on a double beyond `Int`).
    static func int(_ record: [String: Any], _ path: String) -> Int? {
        value(record, path).flatMap(integer)
    }

    static func value(_ record: [String: Any], _ path: String) -> Any? {
        var value: Any? = record
        for key in path.split(separator: ".") { value = (value as? [String: Any])?[String(key)] }
        return value
    }

    private static func integer(_ value: Any) -> Int? {
        if let text = value as? String { return Int(text) }
        guard let number = value as? NSNumber else { return nil }
        // Every double within ±2^63 (exclusive) fits; beyond it, or not finite, none does. An
        // integer beyond Int64 (JSONSerialization makes a UInt64 or a Decimal) is a double there too.
        let double = number.doubleValue
        guard double.isFinite, double > -9.223_372_036_854_775e18, double < 9.223_372_036_854_775e18 else { return nil }
        return Int(number.int64Value)
    }

    /// Epoch milliseconds at `path` (a number, or the text of one) that a date in years 1 to 9999
    /// can hold. Throws `missing field` without a value, `invalid timestamp` for any other.
    static func epochMilliseconds(_ record: [String: Any], _ path: String, format: String) throws(Rejection) -> Int {
        guard let raw = value(record, path), !(raw is NSNull) else {
            throw Rejection(.missingField, field: path, "\(format) record without \(path)")
        }
        guard let milliseconds = integer(raw), epochMillisecondRange.contains(milliseconds) else {
            throw Rejection(.invalidTimestamp, field: path, """
                \(format) \(path) must be epoch milliseconds of a date in years 1 to 9999, not \(String(describing: raw).prefix(40))
                """)
        }
        return milliseconds
    }

    /// 0001-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z in epoch milliseconds.
    static let epochMillisecondRange = -62_135_596_800_000...253_402_300_799_999

    /// A field the format requires: its value, or a rejection naming it.
    static func required(_ record: [String: Any], _ path: String, format: String) throws(Rejection) -> String {
        guard let value = string(record, path) else {
            throw Rejection(.missingField, field: path, "\(format) record without \(path)")
        }
        return value
    }

    /// Epoch milliseconds (within `epochMillisecondRange`) as RFC 3339 UTC with milliseconds.
    static func rfc3339(milliseconds: Int) -> String {
        precondition(epochMillisecondRange.contains(milliseconds), "epoch milliseconds out of range: check with epochMilliseconds")
        let seconds = milliseconds.floorDivided(by: 1000)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let millis = milliseconds - seconds * 1000
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            + "." + String(millis + 1000).dropFirst() + "Z"
    }
}

private extension Int {
    func floorDivided(by divisor: Int) -> Int {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// Stable UUIDs for what a format does not identify with one (a user name, an id that is not a
/// UUID): two 64-bit FNV-1a hashes of the key, as an RFC 9562 version 8 (custom) UUID. The same
/// key gives the same id on every run and every machine.
enum DerivedID {
    static func uuid(_ key: String) -> String {
        var high: UInt64 = 0xcbf2_9ce4_8422_2325
        var low: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in key.utf8 {
            high = (high ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            low = (low ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            low = low.rotatedLeft(by: 5) ^ high
        }
        high = (high & ~0xF000) | 0x8000  // version 8
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 9562 variant
        let hex = String(format: "%016llx%016llx", high, low)
        let chars = Array(hex)
        return [chars[0..<8], chars[8..<12], chars[12..<16], chars[16..<20], chars[20..<32]].map { String($0) }.joined(separator: "-")
    }

    /// `value` when it is a UUID, else one derived from `format:value`.
    static func uuid(orDerivedFrom value: String, format: String) -> String {
        UUIDValue(value) != nil ? value.lowercased() : uuid("\(format):\(value)")
    }
}

private extension UInt64 {
    func rotatedLeft(by count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
