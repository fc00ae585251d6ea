import AuditCore
import Evidence
import Testing

@Suite struct BatchSealTests {
    let tenant = UUIDValue("3f1c2a9e-0000-4000-8000-000000000001")!
    let range = SourceRange(source: "events.ndjson", partition: 0, shard: 1, layout: 7, first: 0, next: 4096)

    func leaves(_ values: [UInt8]) -> [TreeHash] { values.map { MerkleTree.leaf([$0]) } }

    @Test func aGroupsSubrootDoesNotDependOnTheOrderItsRowsAreRead() {
        let one = SealedGroup(kind: .rows, tenantID: tenant, month: Month(year: 2026, month: 6), leaves: leaves([1, 2, 3]))
        let other = SealedGroup(kind: .rows, tenantID: tenant, month: Month(year: 2026, month: 6), leaves: leaves([3, 1, 2]))
        #expect(one == other)
        #expect(one.leafCount == 3)
    }

    @Test func theDigestCoversRowsCountsAndRanges() {
        let group = SealedGroup(kind: .rows, tenantID: tenant, month: Month(year: 2026, month: 6), leaves: leaves([1, 2]))
        let seal = BatchSeal(groups: [group], ranges: [range])
        var changedRow = seal
        changedRow.groups[0] = SealedGroup(kind: .rows, tenantID: tenant, month: Month(year: 2026, month: 6), leaves: leaves([1, 9]))
        var otherMonth = seal
        otherMonth.groups[0].month = Month(year: 2026, month: 7)
        var otherRange = seal
        otherRange.ranges[0].next = 4097
        for changed in [changedRow, otherMonth, otherRange] { #expect(changed.digest != seal.digest) }
        #expect(BatchSeal(groups: [group], ranges: [range]).digest == seal.digest)
    }

    @Test func deadLettersComeAfterRowsWhateverOrderTheGroupsAreGivenIn() {
        let rows = SealedGroup(kind: .rows, tenantID: tenant, month: Month(year: 2026, month: 6), leaves: leaves([1]))
        let dead = SealedGroup(kind: .deadLetters, tenantID: nil, month: nil, leaves: leaves([2]))
        let seal = BatchSeal(groups: [dead, rows], ranges: [range])
        #expect(seal.groups.map(\.kind) == [.rows, .deadLetters])
        #expect(seal.rowCount == 1 && seal.deadLetterCount == 1)
        #expect(seal.root == MerkleTree.node(rows.leafHash, dead.leafHash))
    }

    @Test func theChainFoldsEachDigestIntoTheHead() {
        let first = Chain.next(head: .zero, digest: MerkleTree.leaf([1]))
        #expect(first != Chain.next(head: .zero, digest: MerkleTree.leaf([2])))
        #expect(Chain.next(head: first, digest: MerkleTree.leaf([2])) != Chain.next(head: .zero, digest: MerkleTree.leaf([2])))
    }
}
