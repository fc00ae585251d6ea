import AuditCore
import Foundation

/// What a tenant is given to prove that one of its events is in the signed log, checkable offline
/// with the log's public key and nothing else (`audit-ingest proof verify`):
///
///     event leaf ──group path──▶ group subroot ─┐
///     group leaf (tenant, month, count, subroot) ──batch path──▶ batch root
///     batch digest (root, counts, ranges) ─▶ batch log leaf ──log path──▶ checkpoint root
///     checkpoint ──Ed25519──▶ the public key
///
/// Hashes are base64 (as in the checkpoint); `leaf` is the event's sealed columns as binary COPY
/// sends them (docs/tamper-evidence.md, "Leaves"), from which the event's values are read back.
public struct EventProof: Codable, Sendable, Equatable {
    public static let formatName = "audit-ingest event proof 1"

    public var format: String = EventProof.formatName
    public var eventID: String
    public var tenantID: String
    /// base64 of the leaf's data after its kind byte.
    public var leaf: String
    public var group: Step
    public var batch: Batch
    public var log: Step
    /// The signed note of the checkpoint the log path leads to.
    public var checkpoint: String

    enum CodingKeys: String, CodingKey {
        case format, leaf, group, batch, log, checkpoint
        case eventID = "event_id", tenantID = "tenant_id"
    }

    /// One climb: the position among `size` leaves and the sibling hashes, nearest first.
    public struct Step: Codable, Sendable, Equatable {
        public var index: Int64
        public var size: Int64
        public var path: [String]
        public init(index: Int64, size: Int64, path: [TreeHash]) {
            self.index = index
            self.size = size
            self.path = path.map(\.base64)
        }
    }

    /// The batch the event was sealed in: the group's place in it, and what its digest covers.
    public struct Batch: Codable, Sendable, Equatable {
        public var id: Int64
        public var month: String
        public var rows: Int64
        public var deadLetters: Int64
        public var ranges: [SourceRange]
        public var groups: Step

        enum CodingKeys: String, CodingKey {
            case id, month, rows, ranges, groups
            case deadLetters = "dead_letters"
        }

        public init(id: Int64, month: String, rows: Int64, deadLetters: Int64, ranges: [SourceRange], groups: Step) {
            self.id = id
            self.month = month
            self.rows = rows
            self.deadLetters = deadLetters
            self.ranges = ranges
            self.groups = groups
        }
    }

    public init(eventID: String, tenantID: String, leaf: [UInt8], group: Step, batch: Batch, log: Step, checkpoint: String) {
        self.eventID = eventID
        self.tenantID = tenantID
        self.leaf = Data(leaf).base64EncodedString()
        self.group = group
        self.batch = batch
        self.log = log
        self.checkpoint = checkpoint
    }

    public static func decode(_ json: Data) throws -> EventProof {
        try JSONDecoder().decode(EventProof.self, from: json)
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

extension TreeHash {
    public var base64: String { Data(bytes).base64EncodedString() }

    public init?(base64: String) {
        guard let data = Data(base64Encoded: base64) else { return nil }
        self.init(data)
    }
}
