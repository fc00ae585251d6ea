import AuditCore
import Crypto

/// An operation that removes sealed rows, attested in the log beside the batches (migration
/// 0021): `partitions prune` of one month, or a tenant's retention in one month (0028). It
/// names the month, the table dropped (or, for retention, deleted from), the archive written
/// (its file name, SHA-256 and row count) and every group it removed, by batch, tenant and the
/// group's subroot, so that `verify` can tell a prune from a deletion and check the archive
/// against what was sealed.
public struct LogOperation: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The month's partition dropped: every group of it.
        case prune
        /// One tenant's groups deleted from a month other tenants keep (`tenant retention`).
        case retention
    }

    /// One group of rows the operation removed: the batch that sealed it, its tenant, its leaf
    /// count and subroot as `audit_batch_group` holds them.
    public struct RemovedGroup: Sendable, Equatable {
        public var batch: Int64
        public var tenantID: UUIDValue
        public var leafCount: Int64
        public var subroot: TreeHash

        public init(batch: Int64, tenantID: UUIDValue, leafCount: Int64, subroot: TreeHash) {
            self.batch = batch
            self.tenantID = tenantID
            self.leafCount = leafCount
            self.subroot = subroot
        }

        static func precedes(_ a: RemovedGroup, _ b: RemovedGroup) -> Bool { (a.batch, a.tenantID) < (b.batch, b.tenantID) }
    }

    public var kind: Kind
    public var month: Month
    /// The table dropped (`audit_log_YYYY_MM`, or its detached name).
    public var table: String
    /// The archive's file name (no directory), SHA-256 (lower-case hex) and rows; nil: no archive.
    public var archiveFile: String?
    public var archiveSHA256: String?
    public var archiveRows: Int64?
    /// When it was recorded, in whole seconds since 1970.
    public var recordedAt: Int64
    public var groups: [RemovedGroup]

    public init(kind: Kind, month: Month, table: String, archiveFile: String?, archiveSHA256: String?, archiveRows: Int64?,
                recordedAt: Int64, groups: [RemovedGroup]) {
        self.kind = kind
        self.month = month
        self.table = table
        self.archiveFile = archiveFile
        self.archiveSHA256 = archiveSHA256
        self.archiveRows = archiveRows
        self.recordedAt = recordedAt
        self.groups = groups.sorted(by: RemovedGroup.precedes)
    }

    /// SHA-256 of "audit-ingest operation 1\n" ‖ kind ‖ month (YYYY-MM) ‖ table ‖ archive file ‖
    /// archive SHA-256 (each a length (int32) and UTF-8; an absent archive is two empty strings)
    /// ‖ archive rows (int64, -1 without one) ‖ recorded at (int64 seconds) ‖ groups (int32) ‖ each
    /// group by (batch, tenant): batch (int64), tenant (16 bytes), leaves (int64), subroot.
    /// Integers big-endian.
    public var digest: TreeHash {
        var data = Array("audit-ingest operation 1\n".utf8)
        func append(_ text: String) {
            let bytes = Array(text.utf8)
            data.appendBigEndian(Int32(bytes.count))
            data += bytes
        }
        append(kind.rawValue)
        append(month.description)
        append(table)
        append(archiveFile ?? "")
        append(archiveSHA256 ?? "")
        data.appendBigEndian(archiveRows ?? -1)
        data.appendBigEndian(recordedAt)
        data.appendBigEndian(Int32(groups.count))
        for group in groups {
            data.appendBigEndian(group.batch)
            data.appendBigEndian(group.tenantID.high)
            data.appendBigEndian(group.tenantID.low)
            data.appendBigEndian(group.leafCount)
            data += group.subroot.bytes
        }
        return TreeHash(SHA256.hash(data: data))
    }
}

extension BatchLog {
    /// An operation's leaf: SHA-256(0x00 ‖ "O" ‖ operation id (int64, big-endian) ‖ its digest).
    public static func leaf(operation id: Int64, digest: TreeHash) -> TreeHash {
        var data: [UInt8] = [LeafKind.operation]
        data.appendBigEndian(id)
        data += digest.bytes
        return MerkleTree.leaf(data)
    }

    /// The leaf of one entry of `audit_log_leaf`: kind "B" (a batch) or "O" (an operation).
    public static func leaf(kind: String, id: Int64, digest: TreeHash) -> TreeHash {
        kind == "O" ? leaf(operation: id, digest: digest) : leaf(batch: id, digest: digest)
    }
}
