import AuditCore
import Foundation
import SampleData
import Testing

/// Generated events feed the demo, the benchmarks and most integration tests: if one lay in the
/// future, the decoder would dead-letter it and every count built on them would be off.
@Suite struct SampleEventsTests {
    /// Instants where a calendar edge meets "now": the 1st just after midnight, the last minutes
    /// of a 31st and of a year, a leap day, and a day in mid-month.
    static let instants = ["2027-01-01T00:30:00Z", "2027-03-31T23:30:00Z", "2028-02-29T12:00:00Z",
                           "2026-12-31T23:59:00Z", "2027-03-01T00:00:30Z", "2026-12-15T09:00:00Z"]

    static func date(_ text: String) -> Date {
        Date(timeIntervalSince1970: Double(RFC3339.unixMicroseconds(text)!) / 1_000_000)
    }

    @Test(arguments: instants) func noEventLiesInTheFuture(now text: String) {
        let now = Self.date(text)
        let nowMicros = Int64(now.timeIntervalSince1970 * 1_000_000)
        var latest = Int64.min
        for event in SampleEvents(.init(count: 5000, tenants: 4, months: 3, now: now)) {
            let micros = RFC3339.unixMicroseconds(event.timestamp)
            #expect(micros != nil, "\(event.timestamp) does not parse")
            latest = max(latest, micros ?? .max)
        }
        // Before the start of today (UTC), so also before now.
        let startOfToday = nowMicros - nowMicros % 86_400_000_000
        #expect(latest < startOfToday, "latest event \(latest) µs, today starts at \(startOfToday) µs")
        // ...and still recent: within the last two days' neighbourhood, not a month behind.
        #expect(latest > startOfToday - 3 * 86_400_000_000, "latest event \(latest) µs is not recent")
    }

    @Test(arguments: instants) func aLaterEndMonthIsClampedToTheLatestDay(now text: String) {
        let now = Self.date(text)
        let options = SampleEvents.Options(count: 100, months: 2, endMonth: Month(year: 2030, month: 6), now: now)
        #expect(options.endMonth == Month(unixDay: Int32(options.latestDay)))
        #expect(options.endMonth < Month(year: 2030, month: 6))
    }

    @Test func anEarlierEndMonthIsKeptWithDaysUpToThe28th() {
        let options = SampleEvents.Options(count: 2000, months: 1, endMonth: Month(year: 2026, month: 2),
                                           now: Self.date("2026-12-15T09:00:00Z"))
        #expect(options.endMonth == Month(year: 2026, month: 2))
        let days = Set(SampleEvents(options).map { Int($0.timestamp.dropFirst(8).prefix(2))! })
        #expect(days == Set(1...28))
    }

    @Test func theSameSeedAndClockGiveTheSameEvents() {
        let now = Self.date("2027-01-01T00:30:00Z")
        let first = SampleEvents(.init(count: 200, seed: 7, now: now)).map(SampleEvents.ndjson)
        let second = SampleEvents(.init(count: 200, seed: 7, now: now)).map(SampleEvents.ndjson)
        #expect(first == second)
        #expect(first != SampleEvents(.init(count: 200, seed: 8, now: now)).map(SampleEvents.ndjson))
    }
}
