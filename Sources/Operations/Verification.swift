import AuditCore
import Evidence
import Foundation
import Postgres

/// `audit-ingest verify`: recomputes every sealed batch (migration 0018) from what is stored and
/// reports what does not match, in categories an operator can act on (docs/tamper-evidence.md).
///
/// Checks, in order: each batch record against its groups and ranges (root, counts, digest);
/// each chain of an ingest_offsets row (ranges contiguous, heads folded again, the row's head and
/// position at the last range); every row of every month against its group's subroot; every
/// dead letter likewise; and that every group's rows were found.
///
/// Memory: the batch records, groups and ranges (a few hundred bytes per batch and group), and the
/// leaf hashes of one group at a time. Rows are streamed.
public struct Verification {
    public enum Category: String, Codable, Sendable, CaseIterable {
        case rowChanged = "row changed"
        case rowMissing = "row missing"
        case rowInserted = "row inserted"
        case deadLetterChanged = "dead letter changed"
        case deadLetterMissing = "dead letter missing"
        case deadLetterInserted = "dead letter inserted"
        case batchChanged = "batch record changed"
        case batchMissing = "batch missing"
        case chainGap = "chain gap"
        case chainBroken = "chain broken"
        case tailCut = "tail cut"
        case partitionMissing = "partition missing"
        case checkpointMismatch = "checkpoint mismatch"
        case badSignature = "bad signature"
        case notIntegrated = "not yet integrated"
        case operationChanged = "operation record changed"
        case archiveMismatch = "archive mismatch"
        case logNodeChanged = "log node changed"
    }

    public struct Failure: Codable, Sendable, Equatable, CustomStringConvertible {
        public var category: Category
        public var table: String
        public var batch: Int64?
        public var tenant: String?
        public var detail: String

        public var description: String {
            var parts = ["\(category.rawValue): \(table)"]
            if let batch { parts.append("batch \(batch)") }
            if let tenant { parts.append("tenant \(tenant)") }
            return parts.joined(separator: ", ") + ": " + detail
        }
    }

    public struct Report: Codable, Sendable {
        public var batches = 0
        public var rowsVerified = 0
        public var deadLettersVerified = 0
        /// Rows and dead letters stored before sealing began (batch 0 in a month older than it).
        public var unsealedRows = 0
        public var unsealedDeadLetters = 0
        /// Groups of sealed rows that attested prunes removed (migration 0021), and the prunes.
        public var groupsRemovedByPrune = 0
        public var prunes = 0
        /// Groups of months pruned before prunes were attested (audit_month_removed, signed by nothing).
        public var groupsRemovedUnattested = 0
        /// Archives read back against their prunes (--archive-dir), and the rows in them.
        public var archivesChecked = 0
        public var archivedRowsVerified = 0
        /// Batches in the log (migration 0019), checkpoints checked against it, and batches not yet in it.
        public var logSize: Int64 = 0
        public var storedCheckpoints = 0
        public var externalCheckpoints = 0
        public var batchesNotIntegrated = 0
        /// No `--public-key-file` was given: signatures were checked against the keys the
        /// database lists, which proves less (docs/tamper-evidence.md).
        public var keysFromDatabase = false
        /// What of the rows was read (`Scope`).
        public var scope = "everything"
        public var seconds = 0.0
        public var failures: [Failure] = []
        /// Failures found beyond the first `maxListed` of a category: counted, not listed.
        public var unlisted: [String: Int] = [:]

        public var holds: Bool { failures.isEmpty && unlisted.isEmpty }
    }

    /// How many failures of one category are listed; the rest are counted.
    public var maxListed = 100
    /// Called now and then with the rows verified so far.
    public var progress: ((Int) -> Void)?
    /// The public keys checkpoints must be signed with; empty: those the database lists.
    public var trustedKeys: [TrustedKey] = []
    /// Checkpoints held outside the database, to check the log against.
    public var externalCheckpoints: [ExternalCheckpoint] = []
    /// How long a committed batch may stay out of the log once a log has begun. Default: 10 minutes.
    public var integrationGrace: TimeInterval = 600
    /// Where the archives of `partitions prune --archive` are: each is checked against its
    /// prune. nil: archives are not read.
    public var archiveDirectory: String?
    /// What of the stored rows is read (`Scope`). Default: everything.
    public var scope: Scope = .everything

    public init() {}

    struct GroupKey: Hashable {
        var batch: Int64
        var kind: SealedGroup.Kind
        var tenant: UUIDValue?
        var month: Month?
    }

    private struct ChainKey: Hashable, Comparable {
        var source: String
        var partition: Int32
        var shard: Int32
        var layout: Int64

        static func < (a: ChainKey, b: ChainKey) -> Bool {
            (a.source, a.partition, a.shard, a.layout) < (b.source, b.partition, b.shard, b.layout)
        }
    }

    private struct StoredRange {
        var batch: Int64
        var range: SourceRange
        var head: TreeHash?
    }

    public func run(on connection: PostgresConnection) throws -> Report {
        let started = Date()
        var report = Report()
        func fail(_ category: Category, _ table: String, batch: Int64? = nil, tenant: UUIDValue? = nil, _ detail: String) {
            if report.failures.lazy.filter({ $0.category == category }).count >= maxListed {
                report.unlisted[category.rawValue, default: 0] += 1
            } else {
                report.failures.append(Failure(category: category, table: table, batch: batch, tenant: tenant?.description, detail: detail))
            }
        }

        // Batch records, groups and ranges.
        var batches: [Int64: (rows: Int, deadLetters: Int, root: TreeHash?, digest: TreeHash?)] = [:]
        var logIndex: [Int64: Int64?] = [:]
        for row in try connection.execute("""
            SELECT id, row_count, dead_letter_count, encode(root, 'hex'), encode(digest, 'hex'), log_index FROM audit_batch
            """).rows {
            guard let id = row[0].flatMap({ Int64($0) }) else { continue }
            logIndex.updateValue(row[5].flatMap { Int64($0) }, forKey: id)  // nil stays a value: not yet in the log
            batches[id] = (Int(row[1] ?? "") ?? -1, Int(row[2] ?? "") ?? -1, row[3].flatMap { TreeHash(hex: $0) },
                           row[4].flatMap { TreeHash(hex: $0) })
        }
        report.batches = batches.count
        var groupsByBatch: [Int64: [SealedGroup]] = [:]
        var expected: [GroupKey: (count: Int, subroot: TreeHash)] = [:]
        for row in try connection.execute("""
            SELECT batch_id, kind, tenant_id, to_char(month, 'YYYY-MM'), leaf_count, encode(subroot, 'hex') FROM audit_batch_group
            """).rows {
            guard let batch = row[0].flatMap({ Int64($0) }), let kindText = row[1]?.utf8.first,
                  let kind = SealedGroup.Kind(rawValue: kindText), let count = row[4].flatMap({ Int($0) }),
                  let subroot = row[5].flatMap({ TreeHash(hex: $0) }) else { continue }
            let tenant = row[2].flatMap { UUIDValue($0) }, month = row[3].flatMap { Month($0) }
            groupsByBatch[batch, default: []].append(SealedGroup(kind: kind, tenantID: tenant, month: month, leafCount: count,
                                                                 subroot: subroot))
            expected[GroupKey(batch: batch, kind: kind, tenant: tenant, month: month)] = (count, subroot)
        }
        var chains: [ChainKey: [StoredRange]] = [:]
        var rangesByBatch: [Int64: [SourceRange]] = [:]
        for row in try connection.execute("""
            SELECT batch_id, source, "partition", shard, layout, first_offset, next_offset, encode(head, 'hex')
            FROM audit_batch_range ORDER BY source, "partition", shard, layout, first_offset
            """).rows {
            guard let batch = row[0].flatMap({ Int64($0) }), let source = row[1], let partition = row[2].flatMap({ Int32($0) }),
                  let shard = row[3].flatMap({ Int32($0) }), let layout = row[4].flatMap({ Int64($0) }),
                  let first = row[5].flatMap({ Int64($0) }), let next = row[6].flatMap({ Int64($0) }) else { continue }
            let range = SourceRange(source: source, partition: partition, shard: shard, layout: layout, first: first, next: next)
            chains[ChainKey(source: source, partition: partition, shard: shard, layout: layout), default: []]
                .append(StoredRange(batch: batch, range: range, head: row[7].flatMap { TreeHash(hex: $0) }))
            rangesByBatch[batch, default: []].append(range)
        }

        // Each batch record against its groups and ranges.
        var digests: [Int64: TreeHash] = [:]
        for (id, record) in batches.sorted(by: { $0.key < $1.key }) {
            let seal = BatchSeal(groups: groupsByBatch[id] ?? [], ranges: rangesByBatch[id] ?? [])
            digests[id] = seal.digest
            if seal.root != record.root || seal.rowCount != record.rows || seal.deadLetterCount != record.deadLetters {
                fail(.batchChanged, "audit_batch", batch: id, """
                    its groups give root \(seal.root), \(seal.rowCount) rows and \(seal.deadLetterCount) dead letters; the record \
                    says \(record.root?.description ?? "no root"), \(record.rows) and \(record.deadLetters)
                    """)
            } else if seal.digest != record.digest {
                fail(.batchChanged, "audit_batch", batch: id, "its digest does not match its root, counts and source ranges")
            }
        }
        for batch in Set(groupsByBatch.keys).union(rangesByBatch.keys).subtracting(batches.keys).sorted() {
            fail(.batchMissing, "audit_batch", batch: batch, "its groups or source ranges are stored, its record is not")
        }

        // The log of batches and its checkpoints.
        let log = try checkLog(on: connection)
        for failure in log.failures { fail(failure.category, failure.table, batch: failure.batch, failure.detail) }
        report.logSize = log.size
        report.storedCheckpoints = log.storedCheckpoints
        report.externalCheckpoints = log.externalCheckpoints
        report.batchesNotIntegrated = log.notIntegrated
        report.keysFromDatabase = log.keysFromDatabase

        // Each chain: contiguous, heads folded again, ending where ingest_offsets is.
        var offsets: [ChainKey: (next: Int64, head: TreeHash?)] = [:]
        for row in try connection.execute("""
            SELECT source, "partition", shard, layout, next_offset, encode(batch_hash, 'hex') FROM ingest_offsets
            """).rows {
            guard let source = row[0], let partition = row[1].flatMap({ Int32($0) }), let shard = row[2].flatMap({ Int32($0) }),
                  let layout = row[3].flatMap({ Int64($0) }), let next = row[4].flatMap({ Int64($0) }) else { continue }
            offsets[ChainKey(source: source, partition: partition, shard: shard, layout: layout)] = (next, row[5].flatMap { TreeHash(hex: $0) })
        }
        for (key, ranges) in chains.sorted(by: { $0.key < $1.key }) {
            let name = "\(key.source) partition \(key.partition) shard \(key.shard)"
            var head = TreeHash.zero
            var broken = false
            for (index, stored) in ranges.enumerated() {
                if index > 0, stored.range.first != ranges[index - 1].range.next {
                    let previous = ranges[index - 1].range.next
                    fail(.chainGap, "audit_batch_range", batch: stored.batch, stored.range.first > previous
                         ? "\(name): positions \(previous)..<\(stored.range.first) are in no batch (a batch was removed)"
                         : "\(name): positions \(stored.range.first)..<\(previous) are in two batches")
                    broken = true
                }
                if index == 0, stored.range.first != 0 {
                    // A chain that began on a position row older than sealing starts from its head
                    // then (zero) at that row's position: nothing to compare before it.
                }
                if let digest = digests[stored.batch] { head = Chain.next(head: head, digest: digest) }
                if !broken, stored.head != head {
                    fail(.chainBroken, "audit_batch_range", batch: stored.batch, "\(name): the head after this batch does not follow from the batches before it")
                    broken = true
                }
                if let stored = stored.head, broken { head = stored }  // go on from what is stored
            }
            guard let last = ranges.last else { continue }
            if let position = offsets[key] {
                if position.next != last.range.next {
                    fail(.tailCut, "ingest_offsets", batch: last.batch, position.next > last.range.next
                         ? "\(name): stored up to \(position.next), the last batch ends at \(last.range.next): batches after it are gone"
                         : "\(name): the position \(position.next) is behind the last batch's end \(last.range.next)")
                } else if position.head != last.head {
                    fail(.tailCut, "ingest_offsets", batch: last.batch, "\(name): its head is not the last batch's")
                }
            }
        }
        for (key, position) in offsets where chains[key] == nil && position.head != nil && position.head != TreeHash.zero {
            fail(.batchMissing, "audit_batch_range", "\(key.source) partition \(key.partition) shard \(key.shard): sealed batches moved it, none is stored")
        }

        // Rows, month by month.
        let unsealedMonths = Set(try connection.execute("SELECT to_char(month, 'YYYY-MM') FROM audit_unsealed_month").rows
            .compactMap { $0[0].flatMap { Month($0) } })
        let removedMonths = Set(try connection.execute("SELECT to_char(month, 'YYYY-MM') FROM audit_month_removed").rows
            .compactMap { $0[0].flatMap { Month($0) } })
        let partitions = try connection.execute("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1
            """).rows.compactMap { $0[0] }
        var seen = Set<GroupKey>()
        var presentMonths = Set<Month>()
        let selection = select(expected, logIndex: logIndex)
        report.scope = scope.description
        for table in partitions {
            guard let month = Month(String(table.dropFirst("audit_log_".count)).replacingOccurrences(of: "_", with: "-")) else { continue }
            presentMonths.insert(month)
            if let months = selection.months, !months.contains(month) { continue }
            try scan(table: table, tenantField: 2, condition: selection.rowCondition(month), on: connection) { batch, tenant, leaves in
                if batch == 0 {
                    guard selection.judgesUnsealedRows else { return }
                    if unsealedMonths.contains(month) { report.unsealedRows += leaves.count; return }
                    fail(.rowInserted, table, tenant: tenant, "\(leaves.count) rows belong to no batch in a month sealed since it began")
                    return
                }
                let key = GroupKey(batch: batch, kind: .rows, tenant: tenant, month: month)
                guard selection.includes(key) else { return }
                seen.insert(key)
                report.rowsVerified += leaves.count
                progress?(report.rowsVerified)
                guard let group = expected[key] else {
                    return fail(.rowInserted, table, batch: batch, tenant: tenant, "\(leaves.count) rows name a batch that sealed none of this tenant in \(month)")
                }
                let subroot = MerkleTree.root(leaves.sorted())
                if leaves.count > group.count {
                    fail(.rowInserted, table, batch: batch, tenant: tenant, "\(leaves.count) rows where the batch sealed \(group.count)")
                } else if leaves.count < group.count {
                    fail(.rowMissing, table, batch: batch, tenant: tenant, "\(leaves.count) rows where the batch sealed \(group.count)")
                } else if subroot != group.subroot {
                    fail(.rowChanged, table, batch: batch, tenant: tenant, "the \(group.count) rows do not hash to the sealed subroot")
                }
            }
        }
        if let condition = selection.deadLetterCondition {
            try scan(table: "audit_dead_letter", tenantField: nil, condition: condition, on: connection) { batch, _, leaves in
                if batch == 0 {
                    if selection.judgesUnsealedRows { report.unsealedDeadLetters += leaves.count }
                    return
                }
                let key = GroupKey(batch: batch, kind: .deadLetters, tenant: nil, month: nil)
                guard selection.includes(key) else { return }
                seen.insert(key)
                report.deadLettersVerified += leaves.count
                guard let group = expected[key] else {
                    return fail(.deadLetterInserted, "audit_dead_letter", batch: batch, "\(leaves.count) dead letters name a batch that sealed none")
                }
                if leaves.count > group.count {
                    fail(.deadLetterInserted, "audit_dead_letter", batch: batch, "\(leaves.count) dead letters where the batch sealed \(group.count)")
                } else if leaves.count < group.count {
                    fail(.deadLetterMissing, "audit_dead_letter", batch: batch, "\(leaves.count) dead letters where the batch sealed \(group.count)")
                } else if MerkleTree.root(leaves.sorted()) != group.subroot {
                    fail(.deadLetterChanged, "audit_dead_letter", batch: batch, "the \(group.count) dead letters do not hash to the sealed subroot")
                }
            }
        }
        let operations = try checkOperations(expected: expected, on: connection)
        for failure in operations.failures { fail(failure.category, failure.table, batch: failure.batch, tenant: failure.tenant, failure.detail) }
        report.prunes = operations.operations
        report.archivesChecked = operations.archivesChecked
        report.archivedRowsVerified = operations.archivedRows
        for (key, group) in expected.sorted(by: { $0.key.batch < $1.key.batch }) where !seen.contains(key) && selection.includes(key) {
            if operations.removed.contains(key) { report.groupsRemovedByPrune += 1; continue }
            switch key.kind {
            case .deadLetters:
                guard selection.deadLetterCondition != nil else { continue }
                fail(.deadLetterMissing, "audit_dead_letter", batch: key.batch, "all \(group.count) dead letters of the batch are gone")
            case .rows:
                guard let month = key.month else { continue }
                if !presentMonths.contains(month) {
                    if removedMonths.contains(month) { report.groupsRemovedUnattested += 1; continue }
                    fail(.partitionMissing, "audit_log_\(month.partitionSuffix)", batch: key.batch, tenant: key.tenant,
                         "the month is gone and no attested `partitions prune` removed it; the batch sealed \(group.count) rows of it")
                } else {
                    fail(.rowMissing, "audit_log_\(month.partitionSuffix)", batch: key.batch, tenant: key.tenant,
                         "all \(group.count) rows the batch sealed are gone")
                }
            }
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Streams `table`'s rows (sealed columns, by batch and tenant) and calls `group` with each
    /// (batch, tenant) run's leaf hashes.
    func scan(table: String, tenantField: Int?, condition: String? = nil, on connection: PostgresConnection,
              group: (Int64, UUIDValue?, [TreeHash]) -> Void) throws {
        let isDeadLetter = tenantField == nil
        let columns = isDeadLetter ? Self.deadLetterColumns : Self.rowColumns
        let order = isDeadLetter ? "batch_id" : "batch_id, tenant_id"
        let filter = condition.map { " WHERE \($0)" } ?? ""
        let sql = "COPY (SELECT batch_id, \(columns) FROM \(PostgresConnection.quoteIdentifier(table))\(filter) ORDER BY \(order)) TO STDOUT (FORMAT binary)"
        var current: (batch: Int64, tenant: UUIDValue?)?
        var leaves: [TreeHash] = []
        var header = true
        try connection.copyOut(sql) { chunk in
            var tuples = chunk
            if header {
                tuples = UnsafeRawBufferPointer(rebasing: chunk[min(chunk.count, BinaryCopyEncoder.header.count)...])
                header = false
            }
            try BinaryCopyTuples.forEach(in: tuples) { fields in
                // fields: batch_id, then the sealed columns (their bytes as COPY sends them).
                let batch = fields.int64(0)
                let tenant = tenantField.flatMap { fields.uuid($0) }
                if let run = current, run.batch != batch || run.tenant != tenant {
                    group(run.batch, run.tenant, leaves)
                    leaves.removeAll(keepingCapacity: true)
                }
                current = (batch, tenant)
                leaves.append(MerkleTree.leaf(kind: isDeadLetter ? LeafKind.deadLetter : LeafKind.row, fields.bytes(after: 0)))
            }
        }
        if let run = current { group(run.batch, run.tenant, leaves) }
    }

    /// The columns a row's leaf covers, in the order ingest COPYs them.
    static let rowColumns =
        #"id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address, user_agent, custom_metadata"#
    static let deadLetterColumns = #"source, "partition", "offset", record, tenant_id, raw_payload, reason, sqlstate, detail"#
}

extension BinaryCopyTuples.Fields {
    func uuid(_ index: Int) -> UUIDValue? {
        guard starts[index].length == 16 else { return nil }
        let offset = starts[index].offset + 4
        return UUIDValue(high: UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                         low: UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
    }
}
