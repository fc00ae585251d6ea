/// Parses RFC 3339 date-times: `2024-03-10T12:34:56Z`, `2024-03-10t12:34:56.123456+05:30`,
/// `2024-03-10 12:34:56-08:00`. Fractions beyond microseconds are rounded (as PostgreSQL does).
public enum RFC3339 {
    enum Failure {
        case malformed(String)
        case missingOffset
    }

    /// Microseconds since the Unix epoch, or why the text is not an RFC 3339 date-time.
    static func parse(_ text: UnsafeRawBufferPointer) -> Result<Int64, FailureBox> {
        let count = text.count
        @inline(__always) func digits(_ start: Int, _ length: Int) -> Int? {
            guard start + length <= count else { return nil }
            var value = 0
            for index in start..<(start + length) {
                let byte = text[index]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = digits(0, 4), count > 4, text[4] == 0x2D,
              let month = digits(5, 2), count > 7, text[7] == 0x2D,
              let day = digits(8, 2), count > 10,
              text[10] == 0x54 || text[10] == 0x74 || text[10] == 0x20,  // T, t or space
              let hour = digits(11, 2), count > 13, text[13] == 0x3A,
              let minute = digits(14, 2), count > 16, text[16] == 0x3A,
              let second = digits(17, 2)
        else {
            return .failure(FailureBox(.malformed("expected YYYY-MM-DDTHH:MM:SS with an offset")))
        }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
              hour < 24, minute < 60, second <= 60 else {  // 60: a leap second (RFC 3339 allows it)
            return .failure(FailureBox(.malformed("date or time field out of range")))
        }
        var index = 19
        var micros: Int64 = 0
        if index < count, text[index] == 0x2E {  // fraction
            index += 1
            var scale: Int64 = 100_000
            var roundUp = false
            let start = index
            while index < count, text[index] >= 0x30, text[index] <= 0x39 {
                let digit = Int64(text[index] - 0x30)
                if scale >= 1 {
                    micros += digit * scale
                    scale /= 10
                } else if scale == 0 {
                    roundUp = digit >= 5
                    scale = -1
                }
                index += 1
            }
            guard index > start else { return .failure(FailureBox(.malformed("empty fraction of a second"))) }
            if roundUp { micros += 1 }
        }
        // A leap second (RFC 3339) counts as the first second of the next minute, as PostgreSQL
        // reads it; PostgreSQL refuses a fraction past it.
        guard second < 60 || micros == 0 else {
            return .failure(FailureBox(.malformed("a leap second cannot have a fraction")))
        }
        guard index < count else { return .failure(FailureBox(.missingOffset)) }
        var offsetSeconds = 0
        switch text[index] {
        case 0x5A, 0x7A:  // Z, z
            index += 1
        case 0x2B, 0x2D:  // +, -
            let sign = text[index] == 0x2D ? -1 : 1
            guard let offsetHours = digits(index + 1, 2), index + 3 < count, text[index + 3] == 0x3A,
                  let offsetMinutes = digits(index + 4, 2), offsetHours < 24, offsetMinutes < 60 else {
                return .failure(FailureBox(.malformed("offset must be Z or ±HH:MM")))
            }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
            index += 6
        default:
            return .failure(FailureBox(.missingOffset))
        }
        guard index == count else { return .failure(FailureBox(.malformed("unexpected characters after the offset"))) }
        // Leap seconds happen at 23:59:60 UTC only (whatever the local offset).
        guard second < 60 || ((hour * 3600 + minute * 60 - offsetSeconds) / 60 % 1440 + 1440) % 1440 == 1439 else {
            return .failure(FailureBox(.malformed("second 60 is a leap second, which is 23:59:60 UTC")))
        }
        let days = unixDay(year: year, month: month, day: day)
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return .success(seconds * 1_000_000 + micros)
    }

    struct FailureBox: Error {
        let failure: Failure
        init(_ failure: Failure) { self.failure = failure }
    }
}
