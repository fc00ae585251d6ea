import Evidence
import Foundation
import Postgres

/// `audit-ingest checkpoint`: the integrator of the batch log (migration 0019,
/// docs/tamper-evidence.md). One round appends every committed batch not yet in the log, in id
/// order, then every attested operation (migration 0021), to the RFC 6962 tree of `BatchLog` leaves, and signs a checkpoint of the tree with each
/// key, in one transaction under an advisory lock, so one integrator runs at a time. A round
/// with nothing new republishes the checkpoint with a new time, so that an idle log is provably
/// idle. Each checkpoint is then written to `checkpointDirectory`, if set: `SIZE.checkpoint`,
/// written once and never replaced, and `latest.checkpoint`, replaced each round.
public struct LogIntegrator: Sendable {
    public var signingKeys: [NoteSigningKey]
    public var checkpointDirectory: URL?
    /// The most batches and operations one round appends: a backlog is worked off over several rounds.
    public var maxBatchesPerRound = 100_000

    public init(signingKeys: [NoteSigningKey], checkpointDirectory: URL?) {
        self.signingKeys = signingKeys
        self.checkpointDirectory = checkpointDirectory
    }

    public struct Round: Codable, Sendable {
        public var treeSize: Int64
        public var appended: Int
        public var root: String
        public var signedAt: Date
        /// The note as signed (C2SP signed note of a tlog checkpoint).
        public var note: String
        /// The files written, if any.
        public var files: [String]
    }

    /// pg_advisory_xact_lock key of the integrator: "auditlog" in ASCII.
    static let lockKey: Int64 = 0x6175_6469_746c_6f67

    /// One round; nil when another integrator holds the lock.
    public func run(on connection: PostgresConnection, now: Date = Date()) throws -> Round? {
        guard !signingKeys.isEmpty else { throw OperationsError("checkpoint needs a signing key: --signing-key-file FILE") }
        let round: Round? = try connection.transaction { connection in
            guard try connection.execute("SELECT pg_try_advisory_xact_lock(\(Self.lockKey))").scalar == "t" else { return nil }
            guard let origin = try connection.execute("SELECT origin FROM audit_log_origin").scalar else {
                throw OperationsError("audit_log_origin is empty: run audit-ingest migrate")
            }
            var frontier = try lastFrontier(on: connection)
            let integrated = Int64(try connection.execute("SELECT coalesce(max(log_index) + 1, 0) FROM audit_log_leaf").scalar ?? "") ?? -1
            guard integrated == frontier.size else {
                throw OperationsError("""
                    the log holds \(integrated) entries but its last checkpoint \(frontier.size): the log's state was changed \
                    outside the integrator; run audit-ingest verify
                    """)
            }
            try fillNodes(of: frontier, on: connection)
            // Batches first, then operations: an operation only removes what batches before it sealed.
            var appended = 0
            var nodes: [(id: LogNodeID, hash: TreeHash)] = []
            for (table, kind) in [("audit_batch", "B"), ("audit_operation", "O")] {
                var ids: [Int64] = [], positions: [Int64] = []
                for row in try connection.execute("""
                    SELECT id, encode(digest, 'hex') FROM \(table) WHERE log_index IS NULL ORDER BY id LIMIT \(maxBatchesPerRound - appended)
                    """).rows {
                    guard let id = row[0].flatMap({ Int64($0) }), let digest = row[1].flatMap({ TreeHash(hex: $0) }) else { continue }
                    ids.append(id)
                    positions.append(frontier.size)
                    nodes += frontier.appendReturningNodes(BatchLog.leaf(kind: kind, id: id, digest: digest))
                }
                if !ids.isEmpty {
                    _ = try connection.query("""
                        UPDATE \(table) AS t SET log_index = u.position FROM unnest($1::bigint[], $2::bigint[]) AS u(id, position)
                        WHERE t.id = u.id
                        """, [Self.array(ids), Self.array(positions)])
                }
                appended += ids.count
                // A backlog of batches is worked off first; operations wait for the round that ends it.
                if appended >= maxBatchesPerRound { break }
            }
            try Self.store(nodes, on: connection)
            let checkpoint = LogCheckpoint(origin: origin, size: frontier.size, root: frontier.root, signedAt: now)
            if let checkpointDirectory {
                try FileManager.default.createDirectory(at: checkpointDirectory, withIntermediateDirectories: true)
                try checkAgainstHeld(size: checkpoint.size, root: checkpoint.root, in: checkpointDirectory)
            }
            let note = try SignedNote(text: checkpoint.text, signedBy: signingKeys)
            let signedAt = LogCheckpointTime.text(checkpoint.signedAt)
            _ = try connection.query("""
                INSERT INTO audit_checkpoint (tree_size, root, frontier, note, signed_at) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (tree_size) DO UPDATE SET note = excluded.note, signed_at = excluded.signed_at
                """, [String(frontier.size), checkpoint.root.byteaLiteral, Self.bytea(frontier.bytes), note.encoded, signedAt])
            for key in signingKeys {
                _ = try connection.query("""
                    INSERT INTO audit_signing_key (verifier_key, first_signed, last_signed) VALUES ($1, $2, $2)
                    ON CONFLICT (verifier_key) DO UPDATE SET last_signed = excluded.last_signed
                    """, [key.verifier.encoded, signedAt])
            }
            return Round(treeSize: frontier.size, appended: appended, root: checkpoint.root.description,
                         signedAt: checkpoint.signedAt, note: note.encoded, files: [])
        }
        guard var round else { return nil }
        if let checkpointDirectory { round.files = try publish(round, to: checkpointDirectory) }
        return round
    }

    /// Stores the tree's nodes (migration 0022) for a log begun before they were kept, or whose
    /// newest nodes are gone: recomputed from its leaves, a page at a time, and checked against
    /// the last checkpoint's frontier.
    private func fillNodes(of frontier: LogFrontier, on connection: PostgresConnection) throws {
        // Each round stores its nodes in its own transaction: when the last leaf's node is there,
        // so are the others (one index probe a round, not a count of the log).
        guard frontier.size > 0, try connection.query(
            "SELECT EXISTS (SELECT FROM audit_log_node WHERE level = 0 AND index = $1::bigint)", [String(frontier.size - 1)]
        ).scalar != "t" else { return }
        var rebuilt = LogFrontier()
        let page: Int64 = 50_000
        while rebuilt.size < frontier.size {
            var nodes: [(id: LogNodeID, hash: TreeHash)] = []
            for row in try connection.query("""
                SELECT kind, id, encode(digest, 'hex') FROM audit_log_leaf WHERE log_index >= $1::bigint AND log_index < $2::bigint
                ORDER BY log_index
                """, [String(rebuilt.size), String(min(rebuilt.size + page, frontier.size))]).rows {
                guard let kind = row[0], let id = row[1].flatMap({ Int64($0) }), let digest = row[2].flatMap({ TreeHash(hex: $0) }) else {
                    throw OperationsError("log position \(rebuilt.size) is unreadable: run audit-ingest verify")
                }
                nodes += rebuilt.appendReturningNodes(BatchLog.leaf(kind: kind, id: id, digest: digest))
            }
            guard !nodes.isEmpty else { throw OperationsError("the log ends at \(rebuilt.size), its checkpoint at \(frontier.size): run audit-ingest verify") }
            try Self.store(nodes, on: connection)
        }
        guard rebuilt == frontier else {
            throw OperationsError("the log's leaves do not give its last checkpoint's tree: the log was changed; run audit-ingest verify")
        }
    }

    /// Inserts tree nodes; those already stored are kept.
    static func store(_ nodes: [(id: LogNodeID, hash: TreeHash)], on connection: PostgresConnection) throws {
        for chunk in stride(from: 0, to: nodes.count, by: 10_000).map({ nodes[$0..<min($0 + 10_000, nodes.count)] }) {
            _ = try connection.query("""
                INSERT INTO audit_log_node (level, index, hash)
                SELECT l, i, decode(h, 'hex') FROM unnest($1::smallint[], $2::bigint[], $3::text[]) AS u(l, i, h)
                ON CONFLICT DO NOTHING
                """, ["{" + chunk.map { String($0.id.level) }.joined(separator: ",") + "}",
                      "{" + chunk.map { String($0.id.index) }.joined(separator: ",") + "}",
                      "{" + chunk.map { $0.hash.description }.joined(separator: ",") + "}"])
        }
    }

    private func lastFrontier(on connection: PostgresConnection) throws -> LogFrontier {
        guard let last = try connection.execute("""
            SELECT tree_size, encode(frontier, 'hex') FROM audit_checkpoint ORDER BY tree_size DESC LIMIT 1
            """).rows.first, let size = last[0].flatMap({ Int64($0) }), let hex = last[1] else { return LogFrontier() }
        do {
            return try LogFrontier(size: size, bytes: Self.bytes(hex: hex))
        } catch {
            throw OperationsError("the last checkpoint's frontier is damaged (\(error)); run audit-ingest verify")
        }
    }

    /// Refuses to sign over a log that the checkpoints in `directory` show was rewritten or cut:
    /// one of the same size with another root, or a latest one of more batches.
    private func checkAgainstHeld(size: Int64, root: TreeHash, in directory: URL) throws {
        func held(_ name: String) -> LogCheckpoint? {
            guard let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) else { return nil }
            return try? LogCheckpoint(parsing: SignedNote(parsing: text).text)
        }
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("\(size).checkpoint").path),
           held("\(size).checkpoint")?.root != root {
            throw OperationsError("""
                \(directory.path)/\(size).checkpoint holds a checkpoint of \(size) batches with another root than the database's \
                log: the log was rewritten after that checkpoint; run audit-ingest verify --checkpoint-dir \(directory.path)
                """)
        }
        if let latest = held("latest.checkpoint"), latest.size > size {
            throw OperationsError("""
                \(directory.path)/latest.checkpoint covers \(latest.size) batches, the database's log \(size): batches were \
                removed after that checkpoint; run audit-ingest verify --checkpoint-dir \(directory.path)
                """)
        }
    }

    /// `SIZE.checkpoint` once, then `latest.checkpoint`; each through a temporary file, synced, so
    /// no reader sees half a note.
    private func publish(_ round: Round, to directory: URL) throws -> [String] {
        let sized = directory.appendingPathComponent("\(round.treeSize).checkpoint")
        if !FileManager.default.fileExists(atPath: sized.path) { try Self.writeSynced(round.note, to: sized, replacing: false) }
        let latest = directory.appendingPathComponent("latest.checkpoint")
        try Self.writeSynced(round.note, to: latest, replacing: true)
        return [sized.path, latest.path]
    }

    static func writeSynced(_ text: String, to url: URL, replacing: Bool) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw OperationsError("cannot write \(temporary.path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        defer { unlink(temporary.path) }
        guard written == bytes.count, synced else { throw OperationsError("cannot write \(temporary.path): \(String(cString: strerror(errno)))") }
        // link() refuses an existing name: a sized checkpoint is never replaced.
        let moved = replacing ? rename(temporary.path, url.path) : link(temporary.path, url.path)
        guard moved == 0 else { throw OperationsError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
    }

    static func array(_ values: [Int64]) -> String { "{" + values.map(String.init).joined(separator: ",") + "}" }
    static func bytea(_ bytes: [UInt8]) -> String { "\\x" + bytes.map { String(format: "%02x", $0) }.joined() }
    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var characters = hex.makeIterator()
        while let high = characters.next(), let low = characters.next(), let byte = UInt8(String([high, low]), radix: 16) { bytes.append(byte) }
        return bytes
    }
}

/// Checkpoint times as PostgreSQL and the note write them (UTC, to the second).
enum LogCheckpointTime {
    static func text(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
