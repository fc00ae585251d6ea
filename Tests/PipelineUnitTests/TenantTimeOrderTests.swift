import AuditCore
@testable import Pipeline
import Testing

/// The order a flush COPYs its rows in: by tenant, then time, ties in arrival order, exactly as
/// a stable sort of whole rows gives it.
struct TenantTimeOrderTests {
    private let bytes = UnsafeRawPointer(bitPattern: 0x1000)!

    private func rows(_ count: Int, tenants: [UUIDValue], times: ClosedRange<Int64>) -> [EncodedRow] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { index in
            EncodedRow(partition: Int32(index % 3), record: 0, offset: Int64(index), next: Mark(next: Int64(index + 1), prefixHash: nil),
                       tenantID: tenants.randomElement(using: &generator)!, timestamp: Int64.random(in: times, using: &generator),
                       bytes: bytes, rowLength: index, rawLength: 0)
        }
    }

    private func expectStableOrder(_ input: [EncodedRow]) {
        var sorted = input
        sorted.sortByTenantAndTime()
        let reference = input.enumerated().sorted { ($0.element.tenantID, $0.element.timestamp, $0.offset)
            < ($1.element.tenantID, $1.element.timestamp, $1.offset) }.map(\.element.offset)
        let firstDifference = reference.indices.first { sorted.count != reference.count || sorted[$0].offset != reference[$0] }
        #expect(sorted.count == input.count && firstDifference == nil, "rows out of order from position \(firstDifference ?? -1)")
        #expect(sorted.map(\.rowLength) == sorted.map { Int($0.offset) }, "each row keeps its own fields")
    }

    @Test func fewTenantsWithManyEqualTimes() {
        let tenants = (0..<25).map { _ in UUIDValue(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max)) }
        expectStableOrder(rows(10_000, tenants: tenants, times: 0...50))
    }

    /// More tenants than rows (the table of tenants fills and its probes collide), random and
    /// hand-made ids.
    @Test func moreTenantsThanRowsWithRandomOrHandMadeIds() {
        let random = (0..<5_000).map { _ in UUIDValue(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max)) }
        expectStableOrder(rows(3_000, tenants: random, times: -1_000_000...1_000_000))
        let sequential = (0..<5_000).map { UUIDValue(high: 0, low: UInt64($0)) }
        expectStableOrder(rows(3_000, tenants: sequential, times: -1_000_000...1_000_000))
        let mirrored = (0..<5_000).map { UUIDValue(high: UInt64($0), low: UInt64($0)) }
        expectStableOrder(rows(3_000, tenants: mirrored, times: 0...10))
        expectStableOrder(rows(2, tenants: sequential, times: 0...0))
        expectStableOrder([])
    }

    /// The months a flush needs partitions for: each month of its rows once.
    @Test func distinctMonthsAreEachMonthOfTheRowsOnce() {
        let tenants = [UUIDValue(high: 1, low: 2)]
        let day: Int64 = 86_400_000_000
        for span in [0 ... day / 2, -400 * day ... 400 * day] {
            let sample = rows(2_000, tenants: tenants, times: span)
            #expect(Set(sample.distinctMonths) == Set(sample.map(\.month)))
            #expect(sample.distinctMonths.count == Set(sample.map(\.month)).count)
        }
        #expect([EncodedRow]().distinctMonths.isEmpty)
    }
}
