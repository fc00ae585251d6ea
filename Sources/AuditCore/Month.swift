/// A calendar month in UTC: the unit of `audit_log` and `tenant_metrics` partitioning.
public struct Month: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let year: Int
    /// 1–12.
    public let month: Int

    public init(year: Int, month: Int) {
        precondition((1...12).contains(month), "month \(month) out of range")
        self.year = year
        self.month = month
    }

    /// The month containing `unixDay` (days since 1970-01-01).
    public init(unixDay: Int32) {
        let (year, month, _) = civilDate(fromUnixDay: Int64(unixDay))
        self.init(year: year, month: month)
    }

    public static func < (lhs: Month, rhs: Month) -> Bool { (lhs.year, lhs.month) < (rhs.year, rhs.month) }

    public var next: Month { month == 12 ? Month(year: year + 1, month: 1) : Month(year: year, month: month + 1) }
    public var previous: Month { month == 1 ? Month(year: year - 1, month: 12) : Month(year: year, month: month - 1) }

    /// `2024_01`: the suffix of partition names (`audit_log_2024_01`).
    public var partitionSuffix: String { "\(year)_\(month < 10 ? "0" : "")\(month)" }

    /// `2024-01-01`: the inclusive lower bound of the month.
    public var firstDayISO: String { "\(year)-\(month < 10 ? "0" : "")\(month)-01" }

    /// Days since 1970-01-01 of the month's first day.
    public var firstUnixDay: Int64 { unixDay(year: year, month: month, day: 1) }

    public var description: String { "\(year)-\(month < 10 ? "0" : "")\(month)" }

    /// Parses `2024-01` or `2024_01`.
    public init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == "_" })
        guard parts.count == 2, let year = Int(parts[0]), let month = Int(parts[1]), (1...12).contains(month) else {
            return nil
        }
        self.init(year: year, month: month)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
@inline(__always)
func unixDay(year: Int, month: Int, day: Int) -> Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let m = Int64(month)
    let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
}

/// The inverse of `unixDay(year:month:day:)`.
func civilDate(fromUnixDay days: Int64) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    return (Int(year), Int(month), Int(day))
}

func daysInMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}
