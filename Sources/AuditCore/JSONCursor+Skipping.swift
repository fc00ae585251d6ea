import Foundation

extension JSONCursor {
    // MARK: Skipping values

    /// Skips any value, validating it as PostgreSQL's jsonb input would. Returns true when a
    /// string inside it contains `\u0000` (jsonb refuses that).
    mutating func skipValue(depth: Int, maxDepth: Int) throws(Rejection) -> Bool {
        skipWhitespace()
        guard index < count else { throw invalid("expected a value") }
        switch base[index] {
        case 0x22:
            let mark = scratchUsed
            defer { scratchUsed = mark }  // skipped strings need no storage
            return try readString().containsNUL
        case 0x7B:
            guard depth < maxDepth else { throw Rejection(.nestingTooDeep, "nesting deeper than \(maxDepth)") }
            index += 1
            var containsNUL = false
            skipWhitespace()
            if index < count, base[index] == 0x7D {
                index += 1
                return false
            }
            while true {
                skipWhitespace()
                guard index < count, base[index] == 0x22 else { throw invalid("expected a key") }
                containsNUL = try skipValue(depth: depth + 1, maxDepth: maxDepth) || containsNUL
                try expect(0x3A, "':'")
                containsNUL = try skipValue(depth: depth + 1, maxDepth: maxDepth) || containsNUL
                skipWhitespace()
                guard index < count else { throw invalid("unterminated object") }
                if base[index] == 0x2C { index += 1; continue }
                if base[index] == 0x7D { index += 1; return containsNUL }
                throw invalid("expected ',' or '}'")
            }
        case 0x5B:
            guard depth < maxDepth else { throw Rejection(.nestingTooDeep, "nesting deeper than \(maxDepth)") }
            index += 1
            var containsNUL = false
            skipWhitespace()
            if index < count, base[index] == 0x5D {
                index += 1
                return false
            }
            while true {
                containsNUL = try skipValue(depth: depth + 1, maxDepth: maxDepth) || containsNUL
                skipWhitespace()
                guard index < count else { throw invalid("unterminated array") }
                if base[index] == 0x2C { index += 1; continue }
                if base[index] == 0x5D { index += 1; return containsNUL }
                throw invalid("expected ',' or ']'")
            }
        case 0x74: try skipLiteral("true"); return false
        case 0x66: try skipLiteral("false"); return false
        case 0x6E: try skipLiteral("null"); return false
        default:
            try skipNumber()
            return false
        }
    }

    mutating func skipLiteral(_ literal: StaticString) throws(Rejection) {
        let length = literal.utf8CodeUnitCount
        guard index + length <= count, memcmp(base + index, literal.utf8Start, length) == 0 else {
            throw invalid("invalid literal")
        }
        index += length
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, with an exponent PostgreSQL's numeric
    /// can hold.
    mutating func skipNumber() throws(Rejection) {
        if index < count, base[index] == 0x2D { index += 1 }
        guard index < count, isDigit(base[index]) else { throw invalid("invalid value") }
        if base[index] == 0x30 {
            index += 1
        } else {
            while index < count, isDigit(base[index]) { index += 1 }
        }
        if index < count, base[index] == 0x2E {
            index += 1
            guard index < count, isDigit(base[index]) else { throw invalid("invalid number") }
            while index < count, isDigit(base[index]) { index += 1 }
        }
        if index < count, base[index] | 0x20 == 0x65 {
            index += 1
            if index < count, base[index] == 0x2B || base[index] == 0x2D { index += 1 }
            guard index < count, isDigit(base[index]) else { throw invalid("invalid number") }
            var exponent = 0
            while index < count, isDigit(base[index]) {
                exponent = min(exponent * 10 + Int(base[index] - 0x30), 1_000_000)
                index += 1
            }
            // numeric holds up to 131072 digits before and 16383 after the decimal point.
            guard exponent <= 16_000 else { throw invalid("number exponent out of range") }
        }
    }

    @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
}
