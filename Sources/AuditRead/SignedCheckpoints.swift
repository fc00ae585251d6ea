import Evidence
import Postgres

/// The newest signed checkpoint of the batch log, as `GET /v1/checkpoint` serves it.
public enum SignedCheckpoints {
    public struct Newest: Encodable, Sendable {
        public var origin: String
        public var treeSize: Int64
        public var signedAt: String
        /// The signed note (C2SP tlog-checkpoint).
        public var note: String
        /// Every key the database says signed a checkpoint, with when: its key history.
        public var verifierKeys: [Key]

        enum CodingKeys: String, CodingKey {
            case origin, note
            case treeSize = "tree_size", signedAt = "signed_at", verifierKeys = "verifier_keys"
        }
    }

    public struct Key: Encodable, Sendable {
        public var key: String
        public var firstSigned: String
        public var lastSigned: String
        enum CodingKeys: String, CodingKey { case key, firstSigned = "first_signed", lastSigned = "last_signed" }
    }

    public static func newest(on connection: PostgresConnection) throws -> Newest {
        try connection.transaction { connection in
            try connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            guard let row = try connection.execute("""
                SELECT (SELECT origin FROM audit_log_origin), tree_size,
                       to_char(signed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), note
                FROM audit_checkpoint ORDER BY tree_size DESC LIMIT 1
                """).rows.first, let size = row[1].flatMap({ Int64($0) }) else {
                throw ReadError(kind: .notFound, message: "no checkpoint yet: the operator runs `audit-ingest checkpoint`")
            }
            let keys = try connection.execute("""
                SELECT verifier_key, to_char(first_signed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       to_char(last_signed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM audit_signing_key ORDER BY first_signed
                """).rows.map { Key(key: $0[0] ?? "", firstSigned: $0[1] ?? "", lastSigned: $0[2] ?? "") }
            return Newest(origin: row[0] ?? "", treeSize: size, signedAt: row[2] ?? "", note: row[3] ?? "", verifierKeys: keys)
        }
    }

    public static let consistencyParameters: Set<String> = ["from", "to"]

    /// The proof that checkpoint `from` (a tree size) is a prefix of checkpoint `to` (default:
    /// the newest). Both must be stored checkpoints.
    public static func consistency(parameters: [String: String], on connection: PostgresConnection) throws -> ConsistencyProof {
        func size(_ name: String) throws(ReadError) -> Int64? {
            guard let text = parameters[name] else { return nil }
            guard let size = Int64(text), size > 0 else {
                throw ReadError.badParameter(name, "\(text) is not a checkpoint's tree size (a positive integer)")
            }
            return size
        }
        guard let from = try size("from") else { throw ReadError.badParameter("from", "give the tree size of the checkpoint you hold") }
        let wantedTo = try size("to")
        return try connection.transaction { connection in
            try connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            func note(_ size: Int64) throws -> String {
                guard let note = try connection.query("SELECT note FROM audit_checkpoint WHERE tree_size = $1::bigint", [String(size)]).scalar else {
                    throw ReadError(kind: .notFound, message: "no checkpoint of \(size) batches")
                }
                return note
            }
            let to = try wantedTo ?? Int64(connection.execute("SELECT max(tree_size) FROM audit_checkpoint").scalar ?? "") ?? 0
            guard from <= to else { throw ReadError.badParameter("from", "\(from) is after the checkpoint of \(to) batches") }
            let first = try note(from), second = try note(to)
            let path = from == to ? [] : try LogTree.hashes(of: MerkleProof.consistencyRanges(first: from, size: to), size: to, on: connection)
            return ConsistencyProof(firstNote: first, secondNote: second, path: path)
        }
    }
}
