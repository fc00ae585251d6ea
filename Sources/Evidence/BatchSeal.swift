import AuditCore
import Crypto

/// What one flush commits, sealed: the Merkle subroot of each (tenant, month) run of its rows and
/// of its dead letters, the batch root over those groups, and the batch digest over the root, the
/// counts and the source ranges. A flush chains its digest into the head of every position row
/// it moves (`Chain.next`). docs/tamper-evidence.md describes every byte.
public struct BatchSeal: Sendable, Equatable {
    public var groups: [SealedGroup]
    public var ranges: [SourceRange]

    public init(groups: [SealedGroup], ranges: [SourceRange]) {
        self.groups = groups.sorted(by: SealedGroup.precedes)
        self.ranges = ranges.sorted(by: SourceRange.precedes)
    }

    public var rowCount: Int { groups.filter { $0.kind == .rows }.reduce(0) { $0 + $1.leafCount } }
    public var deadLetterCount: Int { groups.filter { $0.kind == .deadLetters }.reduce(0) { $0 + $1.leafCount } }

    /// The tree hash over the groups' leaves, rows by (tenant, month) first, dead letters last.
    public var root: TreeHash { MerkleTree.root(groups.map(\.leafHash)) }

    /// SHA-256 of "audit-ingest batch 1\n" ‖ root ‖ rows (int64) ‖ dead letters (int64) ‖ the
    /// number of ranges (int32) ‖ each range by (source, partition, shard): the source's length
    /// (int32) and UTF-8, partition (int32), shard (int32), layout (int64), first and next
    /// position (int64). Integers big-endian.
    public var digest: TreeHash {
        Self.digest(root: root, rowCount: Int64(rowCount), deadLetterCount: Int64(deadLetterCount), ranges: ranges)
    }

    /// The digest from its parts (an event proof carries them, not every group).
    public static func digest(root: TreeHash, rowCount: Int64, deadLetterCount: Int64, ranges: [SourceRange]) -> TreeHash {
        var data = Array("audit-ingest batch 1\n".utf8)
        data += root.bytes
        data.appendBigEndian(rowCount)
        data.appendBigEndian(deadLetterCount)
        data.appendBigEndian(Int32(ranges.count))
        for range in ranges.sorted(by: SourceRange.precedes) {
            let source = Array(range.source.utf8)
            data.appendBigEndian(Int32(source.count))
            data += source
            data.appendBigEndian(range.partition)
            data.appendBigEndian(range.shard)
            data.appendBigEndian(range.layout)
            data.appendBigEndian(range.first)
            data.appendBigEndian(range.next)
        }
        return TreeHash(SHA256.hash(data: data))
    }
}

/// The positions [first, next) of one source partition that a batch moved one shard's row of
/// `ingest_offsets` across (what of them the shard did not store belongs to other shards).
public struct SourceRange: Codable, Sendable, Equatable {
    public var source: String
    public var partition: Int32
    public var shard: Int32
    public var layout: Int64
    public var first: Int64
    public var next: Int64

    public init(source: String, partition: Int32, shard: Int32, layout: Int64, first: Int64, next: Int64) {
        self.source = source
        self.partition = partition
        self.shard = shard
        self.layout = layout
        self.first = first
        self.next = next
    }

    /// The order a digest takes ranges in: by source, partition and shard.
    public static func precedes(_ a: SourceRange, _ b: SourceRange) -> Bool {
        (a.source, a.partition, a.shard) < (b.source, b.partition, b.shard)
    }
}

/// One group of a batch: the rows of one tenant in one month, or the batch's dead letters.
public struct SealedGroup: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case rows = 0x52         // "R"
        case deadLetters = 0x44  // "D"
    }

    public var kind: Kind
    /// nil for dead letters.
    public var tenantID: UUIDValue?
    /// nil for dead letters.
    public var month: Month?
    public var leafCount: Int
    public var subroot: TreeHash

    public init(kind: Kind, tenantID: UUIDValue?, month: Month?, leafCount: Int, subroot: TreeHash) {
        self.kind = kind
        self.tenantID = tenantID
        self.month = month
        self.leafCount = leafCount
        self.subroot = subroot
    }

    /// A group of `leaves` (in any order): the subroot is the tree over them sorted bytewise.
    public init(kind: Kind, tenantID: UUIDValue?, month: Month?, leaves: [TreeHash]) {
        self.init(kind: kind, tenantID: tenantID, month: month, leafCount: leaves.count, subroot: MerkleTree.root(leaves.sorted()))
    }

    /// SHA-256(0x00 ‖ "G" ‖ kind ‖ tenant (16 bytes, zero for dead letters) ‖ year·100+month
    /// (int32, 0 for dead letters) ‖ leaves (int64) ‖ subroot).
    public var leafHash: TreeHash {
        var data: [UInt8] = [kind.rawValue]
        let tenant = tenantID ?? UUIDValue(high: 0, low: 0)
        data.appendBigEndian(tenant.high)
        data.appendBigEndian(tenant.low)
        data.appendBigEndian(Int32(month.map { $0.year * 100 + $0.month } ?? 0))
        data.appendBigEndian(Int64(leafCount))
        data += subroot.bytes
        return data.withUnsafeBytes { MerkleTree.leaf(kind: 0x47, $0) }
    }

    /// The order of a batch's groups: rows by (tenant, month), dead letters last.
    public static func precedes(_ a: SealedGroup, _ b: SealedGroup) -> Bool {
        if a.kind != b.kind { return a.kind == .rows }
        let zero = UUIDValue(high: 0, low: 0)
        if a.tenantID != b.tenantID { return a.tenantID ?? zero < b.tenantID ?? zero }
        return (a.month ?? Month(year: 0, month: 1)) < (b.month ?? Month(year: 0, month: 1))
    }
}

/// A chain of batches per `ingest_offsets` row: head' = SHA-256(head ‖ digest), from 32 zero bytes.
/// The flush computes it in PostgreSQL (`sha256(batch_hash || digest)`) in the statement that
/// moves the row; `verify` folds it again.
public enum Chain {
    public static func next(head: TreeHash, digest: TreeHash) -> TreeHash {
        TreeHash(SHA256.hash(data: head.bytes + digest.bytes))
    }
}

/// The kinds of leaf: the first byte of a leaf's data after RFC 6962's 0x00.
public enum LeafKind {
    /// A row of audit_log: its columns as binary COPY sends them.
    public static let row: UInt8 = 0x52         // "R"
    /// A row of audit_dead_letter.
    public static let deadLetter: UInt8 = 0x44  // "D"
    /// A batch in the log (`BatchLog`).
    public static let batch: UInt8 = 0x42       // "B"
    /// An operation in the log that removed sealed rows (`LogOperation`).
    public static let operation: UInt8 = 0x4F   // "O"
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
