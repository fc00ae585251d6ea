import Foundation

/// What `GET /v1/checkpoint/consistency` answers: two signed checkpoints of the batch log and the
/// RFC 6962 proof that the first tree is a prefix of the second, so nothing it covered was changed
/// or removed (`audit-ingest proof consistency` checks it offline).
public struct ConsistencyProof: Codable, Sendable, Equatable {
    public static let formatName = "audit-ingest consistency proof 1"

    public var format: String = ConsistencyProof.formatName
    public var firstNote: String
    public var secondNote: String
    public var path: [String]

    enum CodingKeys: String, CodingKey {
        case format, path
        case firstNote = "first_checkpoint", secondNote = "second_checkpoint"
    }

    public init(firstNote: String, secondNote: String, path: [TreeHash]) {
        self.firstNote = firstNote
        self.secondNote = secondNote
        self.path = path.map(\.base64)
    }

    /// Both checkpoints signed by one of `keys`, of one log, and the first a prefix of the
    /// second. Returns the two checkpoints; throws naming what does not hold.
    public func check(keys: [NoteVerifierKey]) throws(EvidenceFormatError) -> (first: LogCheckpoint, second: LogCheckpoint) {
        guard format == Self.formatName else { throw EvidenceFormatError("not a consistency proof (format \(format))") }
        func signed(_ text: String, _ which: String) throws(EvidenceFormatError) -> LogCheckpoint {
            let note = try SignedNote(parsing: text)
            guard keys.contains(where: { note.isSigned(by: $0) == true }) else {
                throw EvidenceFormatError("the \(which) checkpoint is signed by none of the keys given")
            }
            return try LogCheckpoint(parsing: note.text)
        }
        let first = try signed(firstNote, "first"), second = try signed(secondNote, "second")
        guard first.origin == second.origin else { throw EvidenceFormatError("the checkpoints are of two logs: \(first.origin), \(second.origin)") }
        let hashes = path.compactMap(TreeHash.init(base64:))
        guard hashes.count == path.count else { throw EvidenceFormatError("a path hash is not 32 bytes of base64") }
        guard MerkleProof.isConsistent(first: first.size, firstRoot: first.root, second: second.size, secondRoot: second.root, path: hashes) else {
            throw EvidenceFormatError("the log of \(second.size) batches does not extend the log of \(first.size): it was rewritten or cut")
        }
        return (first, second)
    }

    public static func decode(_ json: Data) throws -> ConsistencyProof { try JSONDecoder().decode(ConsistencyProof.self, from: json) }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
