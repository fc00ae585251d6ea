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
}
