#if arch(x86_64)
import CJSONScan
#endif
import Foundation

/// A position in a JSON message, with the lexing the decoder needs. Strings without escapes are
/// returned as views into the message; escaped ones are unescaped into `scratch`, a bump
/// allocator reset per message (unescaping never makes text longer, so the message size bounds it).
///
/// The message must already be valid UTF-8.
struct JSONCursor {
    let base: UnsafePointer<UInt8>
    let count: Int
    var index = 0
    let scratch: UnsafeMutablePointer<UInt8>
    var scratchUsed = 0

    /// A decoded string, whether it contained `\u0000`, and whether it had escapes (when not,
    /// `bytes` is the message's own text between the quotes, and holds no quote, backslash or
    /// control character).
    struct StringValue {
        var bytes: UnsafeRawBufferPointer
        var containsNUL: Bool
        var wasEscaped: Bool
    }

    @inline(__always) var isAtEnd: Bool { index >= count }
    @inline(__always) var current: UInt8 { base[index] }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < count {
            switch base[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// Consumes `byte` (after whitespace) or throws invalid JSON.
    @inline(__always)
    mutating func expect(_ byte: UInt8, _ what: StaticString) throws(Rejection) {
        skipWhitespace()
        guard index < count, base[index] == byte else { throw invalid("expected \(what)") }
        index += 1
    }

    func invalid(_ message: String) -> Rejection {
        Rejection(.invalidJSON, "\(message) at byte \(index)")
    }

    // MARK: Strings

    /// Reads a string starting at its opening quote.
    mutating func readString() throws(Rejection) -> StringValue {
        let start = index + 1  // after the opening quote
        var position = start
        #if arch(x86_64)
        // Sixteen bytes at a time (SSE2) to the first quote, backslash or control character:
        // most strings of an event (keys, UUIDs, names) end within one step.
        while position + 16 <= count {
            let stops = audit_json_string_stops16(base + position)
            if stops != 0 { return try endString(from: start, at: position + stops.trailingZeroBitCount) }
            position += 16
        }
        #endif
        // Eight bytes at a time: the rest of the message on x86-64, everything elsewhere.
        while position + 8 <= count {
            let special = quoteBackslashOrControl(UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
            if special != 0 {
                return try endString(from: start, at: position + special.trailingZeroBitCount >> 3)
            }
            position += 8
        }
        while position < count {
            let byte = base[position]
            if byte == 0x22 || byte == 0x5C || byte < 0x20 { return try endString(from: start, at: position) }
            position += 1
        }
        index = count
        throw invalid("unterminated string")
    }

    /// At the first quote, backslash or control character of the string that starts at `start`.
    @inline(__always)
    private mutating func endString(from start: Int, at position: Int) throws(Rejection) -> StringValue {
        index = position
        switch base[position] {
        case 0x22:  // closing quote: no escapes, a view into the message
            index += 1
            return StringValue(bytes: UnsafeRawBufferPointer(start: base + start, count: position - start), containsNUL: false, wasEscaped: false)
        case 0x5C:
            return try readEscapedString(from: start)
        default:
            throw invalid("control character in string")
        }
    }

    @inline(never)
    private mutating func readEscapedString(from start: Int) throws(Rejection) -> StringValue {
        let output = scratch + scratchUsed
        var written = index - start
        output.update(from: base + start, count: written)
        var containsNUL = false
        while index < count {
            let byte = base[index]
            if byte == 0x22 {
                index += 1
                scratchUsed += written
                return StringValue(bytes: UnsafeRawBufferPointer(start: output, count: written), containsNUL: containsNUL, wasEscaped: true)
            }
            if byte < 0x20 { throw invalid("control character in string") }
            guard byte == 0x5C else {
                output[written] = byte
                written += 1
                index += 1
                continue
            }
            index += 1
            guard index < count else { break }
            let escape = base[index]
            index += 1
            switch escape {
            case 0x22, 0x5C, 0x2F: output[written] = escape
            case 0x62: output[written] = 0x08
            case 0x66: output[written] = 0x0C
            case 0x6E: output[written] = 0x0A
            case 0x72: output[written] = 0x0D
            case 0x74: output[written] = 0x09
            case 0x75:
                let scalar = try readUnicodeEscape()
                if scalar == 0 { containsNUL = true }
                written += encodeUTF8(scalar, into: output + written)
                continue
            default:
                throw invalid("invalid escape \\\(Character(Unicode.Scalar(escape)))")
            }
            written += 1
        }
        throw invalid("unterminated string")
    }

    /// After `\u`: four hex digits, and a low surrogate escape after a high one.
    private mutating func readUnicodeEscape() throws(Rejection) -> UInt32 {
        let first = try readHex4()
        switch first {
        case 0xD800...0xDBFF:
            guard index + 1 < count, base[index] == 0x5C, base[index + 1] == 0x75 else {
                throw Rejection(.invalidJSON, "unpaired surrogate \\u\(String(first, radix: 16)) at byte \(index)")
            }
            index += 2
            let second = try readHex4()
            guard (0xDC00...0xDFFF).contains(second) else {
                throw Rejection(.invalidJSON, "unpaired surrogate \\u\(String(first, radix: 16)) at byte \(index)")
            }
            return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        case 0xDC00...0xDFFF:
            throw Rejection(.invalidJSON, "unpaired surrogate \\u\(String(first, radix: 16)) at byte \(index)")
        default:
            return first
        }
    }

    private mutating func readHex4() throws(Rejection) -> UInt32 {
        guard index + 4 <= count else { throw invalid("truncated \\u escape") }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let nibble = hexNibble(base[index + offset])
            guard nibble & 0xF0 == 0 else { throw invalid("invalid \\u escape") }
            value = value << 4 | UInt32(nibble)
        }
        index += 4
        return value
    }
}

/// One in each byte of a word, and each byte's high bit: the constants of the word-at-a-time
/// scans (strings here, ASCII runs in `isValidUTF8`).
let ones: UInt64 = 0x0101_0101_0101_0101
let highBits: UInt64 = 0x8080_8080_8080_8080

/// The high bit of each byte of `word` (little-endian) that is `"`, `\\` or below 0x20, or 0.
/// Bytes after the first such byte may be flagged wrongly (a borrow carries into them), never
/// bytes before it: the lowest set bit marks the first one exactly.
@inline(__always)
private func quoteBackslashOrControl(_ word: UInt64) -> UInt64 {
    let quote = word ^ (ones &* 0x22)
    let backslash = word ^ (ones &* 0x5C)
    let zeroInQuote = (quote &- ones) & ~quote
    let zeroInBackslash = (backslash &- ones) & ~backslash
    let control = (word &- ones &* 0x20) & ~word
    return (zeroInQuote | zeroInBackslash | control) & highBits
}

/// Writes `scalar` as UTF-8 and returns the byte count.
@inline(__always)
private func encodeUTF8(_ scalar: UInt32, into output: UnsafeMutablePointer<UInt8>) -> Int {
    switch scalar {
    case 0..<0x80:
        output[0] = UInt8(scalar)
        return 1
    case 0x80..<0x800:
        output[0] = UInt8(0xC0 | scalar >> 6)
        output[1] = UInt8(0x80 | scalar & 0x3F)
        return 2
    case 0x800..<0x10000:
        output[0] = UInt8(0xE0 | scalar >> 12)
        output[1] = UInt8(0x80 | scalar >> 6 & 0x3F)
        output[2] = UInt8(0x80 | scalar & 0x3F)
        return 3
    default:
        output[0] = UInt8(0xF0 | scalar >> 18)
        output[1] = UInt8(0x80 | scalar >> 12 & 0x3F)
        output[2] = UInt8(0x80 | scalar >> 6 & 0x3F)
        output[3] = UInt8(0x80 | scalar & 0x3F)
        return 4
    }
}
