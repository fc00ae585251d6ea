import AuditCore
import Evidence
import Foundation

/// What of the stored rows `verify` reads: everything, one tenant's rows, a random sample of
/// groups, or the batches a checkpoint does not cover yet. Batch records, chains, the log,
/// checkpoints and prunes are always checked whole: they are a few hundred bytes per batch.
extension Verification {
    public enum Scope: Sendable, Equatable, CustomStringConvertible {
        case everything
        /// One tenant's rows in every month. Dead letters are sealed per batch, across tenants,
        /// so they are not read.
        case tenant(UUIDValue)
        /// This many groups (a tenant's rows in a month of one batch, or a batch's dead letters)
        /// chosen at random.
        case sample(Int)
        /// The batches after the first `size` of the log (a checkpoint's tree size), and those
        /// not yet in it.
        case since(size: Int64)

        public var description: String {
            switch self {
            case .everything: "everything"
            case .tenant(let tenant): "tenant \(tenant) only"
            case .sample(let count): "a random sample of \(count) groups"
            case .since(let size): "the batches after the first \(size) of the log"
            }
        }
    }

    /// A scope resolved against the groups stored: which groups count, which months to read, and
    /// the condition that narrows each read.
    struct Selection {
        var includes: (GroupKey) -> Bool
        /// nil: every month.
        var months: Set<Month>?
        /// A condition on the month's rows (and the dead letters'), or nil for all of them;
        /// built from typed values only (integers and UUIDs), never from text.
        var rowCondition: (Month) -> String?
        /// nil: dead letters are not read.
        var deadLetterCondition: String??
        /// Rows of batch 0 (stored before sealing) are only judged when every row is read.
        var judgesUnsealedRows: Bool
    }

    func select(_ expected: [GroupKey: (count: Int, subroot: TreeHash)], logIndex: [Int64: Int64?]) -> Selection {
        switch scope {
        case .everything:
            return Selection(includes: { _ in true }, months: nil, rowCondition: { _ in nil }, deadLetterCondition: .some(nil),
                             judgesUnsealedRows: true)
        case .tenant(let tenant):
            return Selection(includes: { $0.kind == .rows && $0.tenant == tenant }, months: nil,
                             rowCondition: { _ in "tenant_id = '\(tenant)'" }, deadLetterCondition: nil, judgesUnsealedRows: true)
        case .sample(let count):
            let chosen = Set(expected.keys.shuffled().prefix(max(0, count)))
            var byMonth: [Month: [GroupKey]] = [:]
            for key in chosen where key.kind == .rows { if let month = key.month { byMonth[month, default: []].append(key) } }
            let deadLetterBatches = chosen.filter { $0.kind == .deadLetters }.map { String($0.batch) }
            return Selection(
                includes: { chosen.contains($0) }, months: Set(byMonth.keys),
                rowCondition: { month in
                    "(batch_id, tenant_id) IN (" + (byMonth[month] ?? []).map { "(\($0.batch), '\($0.tenant!)'::uuid)" }.joined(separator: ", ") + ")"
                },
                deadLetterCondition: deadLetterBatches.isEmpty ? nil : .some("batch_id IN (\(deadLetterBatches.joined(separator: ", ")))"),
                judgesUnsealedRows: false)
        case .since(let size):
            // Batches after the checkpoint, and rows naming a batch no record knows (forged).
            let later = Set(logIndex.compactMap { id, index in (index.map { $0 >= size } ?? true) ? id : nil })
            let first = later.min() ?? (logIndex.keys.max() ?? 0) + 1
            let includes: (GroupKey) -> Bool = { later.contains($0.batch) || logIndex[$0.batch] == nil }
            let months = Set(expected.keys.filter { $0.kind == .rows && later.contains($0.batch) }.compactMap(\.month))
            return Selection(includes: includes, months: months, rowCondition: { _ in "batch_id >= \(first)" },
                             deadLetterCondition: .some("batch_id >= \(first)"), judgesUnsealedRows: false)
        }
    }
}
