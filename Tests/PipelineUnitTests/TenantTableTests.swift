import AuditCore
@testable import Pipeline
import Testing

/// The table the registered tenants are looked up in for every event.
struct TenantTableTests {
    /// Members are found and others are not, after the table grew well past its first size,
    /// for random and hand-made ids alike.
    @Test func findsExactlyItsMembersAfterGrowing() {
        let random = (0..<3_000).map { _ in UUIDValue(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max)) }
        let handMade = (0..<3_000).map { UUIDValue(high: UInt64($0 % 7), low: UInt64($0)) }
        for ids in [random, handMade] {
            var table = TenantTable(capacity: 1)
            for (index, id) in ids.prefix(2_000).enumerated() {
                #expect(table.ordinal(inserting: id) == index)
            }
            #expect(table.ordinal(inserting: ids[5]) == 5, "inserting a member again keeps its number")
            #expect(table.count == 2_000)
            #expect(ids.prefix(2_000).allSatisfy { table.contains($0) })
            #expect(!ids.dropFirst(2_000).contains { table.contains($0) })
            #expect(TenantTable(Set(ids.prefix(10))).count == 10 && TenantTable(Set(ids.prefix(10))).contains(ids[9]))
        }
    }
}
