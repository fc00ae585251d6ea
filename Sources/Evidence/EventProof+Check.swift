import AuditCore
import Foundation

/// What a proof that holds shows: the event as stored, where it was sealed, and the checkpoint
/// and key that vouch for it.
public struct ProvenEvent: Sendable, Equatable {
    public var event: SealedRow
    public var batchID: Int64
    public var logIndex: Int64
    public var checkpoint: LogCheckpoint
    public var signer: NoteVerifierKey
}

extension EventProof {
    /// Recomputes every step from the leaf up and checks the checkpoint's signature with one of
    /// `keys`. Throws `EvidenceFormatError` naming the first step that does not hold.
    public func check(keys: [NoteVerifierKey]) throws(EvidenceFormatError) -> ProvenEvent {
        guard format == Self.formatName else { throw EvidenceFormatError("not an event proof (format \(format))") }
        guard let leafData = Data(base64Encoded: leaf).map(Array.init) else { throw EvidenceFormatError("leaf: not base64") }
        let row = try SealedRow(leafData: leafData)
        guard row.id.lowercased() == eventID.lowercased() else {
            throw EvidenceFormatError("the leaf is event \(row.id), not \(eventID)")
        }
        guard row.tenantID.lowercased() == tenantID.lowercased(), let tenant = UUIDValue(tenantID) else {
            throw EvidenceFormatError("the leaf belongs to tenant \(row.tenantID), not \(tenantID)")
        }
        guard let month = Month(batch.month), row.month == month else {
            throw EvidenceFormatError("the event's month is \(row.month), the proof's group is \(batch.month)")
        }

        // Leaf → group subroot → group leaf → batch root → digest → log leaf → log root.
        let eventLeaf = leafData.withUnsafeBytes { MerkleTree.leaf(kind: LeafKind.row, $0) }
        let subroot = try Self.climb(eventLeaf, group, "the event's group")
        let group = SealedGroup(kind: .rows, tenantID: tenant, month: month, leafCount: Int(self.group.size), subroot: subroot)
        let batchRoot = try Self.climb(group.leafHash, batch.groups, "the batch")
        let digest = BatchSeal.digest(root: batchRoot, rowCount: batch.rows, deadLetterCount: batch.deadLetters,
                                      ranges: batch.ranges)
        let logRoot = try Self.climb(BatchLog.leaf(batch: batch.id, digest: digest), log, "the log")

        // The checkpoint: signed by a trusted key, of a tree of that size with that root.
        let note = try SignedNote(parsing: checkpoint)
        guard let signer = keys.first(where: { note.isSigned(by: $0) == true }) else {
            throw EvidenceFormatError("the checkpoint is signed by none of the keys given")
        }
        let signed = try LogCheckpoint(parsing: note.text)
        guard signed.size == log.size else {
            throw EvidenceFormatError("the log path is for a tree of \(log.size) batches, the checkpoint signs \(signed.size)")
        }
        guard signed.root == logRoot else {
            throw EvidenceFormatError("the path leads to root \(logRoot.base64), the checkpoint signs \(signed.root.base64): the event is not in that log")
        }
        return ProvenEvent(event: row, batchID: batch.id, logIndex: log.index, checkpoint: signed, signer: signer)
    }

    private static func climb(_ leaf: TreeHash, _ step: Step, _ what: String) throws(EvidenceFormatError) -> TreeHash {
        let path = step.path.compactMap(TreeHash.init(base64:))
        guard path.count == step.path.count else { throw EvidenceFormatError("\(what): a path hash is not 32 bytes of base64") }
        guard let root = MerkleProof.root(leaf: leaf, index: step.index, size: step.size, path: path) else {
            throw EvidenceFormatError("\(what): a path of \(path.count) hashes cannot place leaf \(step.index) in a tree of \(step.size)")
        }
        return root
    }
}

/// A row's sealed columns read back from its leaf data: per column a 32-bit big-endian length
/// (-1 for NULL) and the value in the type's binary format.
public struct SealedRow: Sendable, Equatable {
    public var id: String
    public var tenantID: String
    public var userID: String?
    public var action: String
    public var resourceType: String?
    public var resourceID: String?
    public var severity: String
    /// Microseconds since 1970-01-01 UTC.
    public var unixMicros: Int64
    public var ipAddress: String?
    public var userAgent: String?
    /// The metadata as jsonb prints it.
    public var customMetadata: String?

    public var month: Month { Month(unixDay: Int32(floorDiv(unixMicros, 86_400_000_000))) }
    public var timestamp: Date { Date(timeIntervalSince1970: Double(unixMicros) / 1_000_000) }

    public init(leafData: [UInt8]) throws(EvidenceFormatError) {
        var fields: [[UInt8]?] = []
        var offset = 0
        while offset < leafData.count {
            guard offset + 4 <= leafData.count else { throw EvidenceFormatError("leaf: a column length is cut off") }
            let length = Int(Int32(bitPattern: leafData[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }))
            offset += 4
            if length < 0 { fields.append(nil); continue }
            guard offset + length <= leafData.count else { throw EvidenceFormatError("leaf: a column is cut off") }
            fields.append(Array(leafData[offset..<offset + length]))
            offset += length
        }
        guard fields.count == 11 else { throw EvidenceFormatError("leaf: \(fields.count) columns, a row has 11") }
        func uuid(_ bytes: [UInt8]?) throws(EvidenceFormatError) -> String? {
            guard let bytes else { return nil }
            guard bytes.count == 16 else { throw EvidenceFormatError("leaf: a uuid of \(bytes.count) bytes") }
            let hex = bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
            return [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
                .joined(separator: "-")
        }
        func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
        guard let id = try uuid(fields[0]), let tenant = try uuid(fields[1]), let action = text(fields[3]),
              let severity = text(fields[6]), let time = fields[7], time.count == 8 else {
            throw EvidenceFormatError("leaf: the id, tenant, action, severity or timestamp is missing")
        }
        self.id = id
        tenantID = tenant
        userID = try uuid(fields[2])
        self.action = action
        resourceType = text(fields[4])
        resourceID = text(fields[5])
        self.severity = severity
        // timestamptz: microseconds since 2000-01-01 UTC.
        unixMicros = Int64(bitPattern: time.reduce(0) { $0 << 8 | UInt64($1) }) + 946_684_800_000_000
        ipAddress = fields[8].flatMap(Self.inet)
        userAgent = text(fields[9])
        customMetadata = fields[10].flatMap { $0.first == 1 ? String(decoding: $0.dropFirst(), as: UTF8.self) : nil }
    }

    /// inet's binary form: family (2 IPv4, 3 IPv6), bits, is-cidr, length, address.
    public static func inet(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 4, bytes.count == 4 + Int(bytes[3]) else { return nil }
        let address = Array(bytes[4...])
        let bits = Int(bytes[1])
        let text: String
        if bytes[0] == 2, address.count == 4 {
            text = address.map(String.init).joined(separator: ".")
            return bits == 32 ? text : "\(text)/\(bits)"
        }
        guard address.count == 16 else { return nil }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]) }
        // RFC 5952: the longest run of two or more zero groups (the first of equal runs) becomes "::".
        var best = (start: -1, length: 1), run = (start: 0, length: 0)
        for (index, group) in groups.enumerated() {
            run = group == 0 ? (run.length == 0 ? index : run.start, run.length + 1) : (0, 0)
            if run.length > best.length { best = run }
        }
        let hex = groups.map { String($0, radix: 16) }
        if best.start >= 0 {
            text = hex[..<best.start].joined(separator: ":") + "::" + hex[(best.start + best.length)...].joined(separator: ":")
        } else {
            text = hex.joined(separator: ":")
        }
        return bits == 128 ? text : "\(text)/\(bits)"
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

extension String {
    fileprivate func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
