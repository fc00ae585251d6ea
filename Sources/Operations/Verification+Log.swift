import Evidence
import Foundation
import Postgres

/// The batch log's part of `verify` (migration 0019): the log tree recomputed from audit_batch,
/// every checkpoint (stored, and held outside the database) checked against it and against the
/// keys trusted, and batches left out of the log for too long.
extension Verification {
    /// A checkpoint held outside the database: a file of `--checkpoint-dir` or `--checkpoint`.
    public struct ExternalCheckpoint: Sendable {
        public var name: String
        public var note: String
        public init(name: String, note: String) {
            self.name = name
            self.note = note
        }
    }

    struct LogFindings {
        var failures: [(category: Category, table: String, batch: Int64?, detail: String)] = []
        var size: Int64 = 0
        var storedCheckpoints = 0
        var externalCheckpoints = 0
        var notIntegrated = 0
        var keysFromDatabase = false
    }

    private struct Claim {
        var source: String
        var checkpoint: LogCheckpoint
        var external: Bool
    }

    func checkLog(on connection: PostgresConnection) throws -> LogFindings {
        var findings = LogFindings()
        func fail(_ category: Category, _ table: String, batch: Int64? = nil, _ detail: String) {
            findings.failures.append((category, table, batch, detail))
        }
        let origin = try connection.execute("SELECT origin FROM audit_log_origin").scalar ?? ""
        var keys = trustedKeys
        if keys.isEmpty {
            // No key given: the database's key history, which whoever can rewrite the database
            // can rewrite too. Said in the report.
            keys = try connection.execute("SELECT verifier_key FROM audit_signing_key").rows.compactMap { row in
                row[0].flatMap { try? NoteVerifierKey(parsing: $0) }.map { TrustedKey(key: $0) }
            }
            findings.keysFromDatabase = true
        }

        // Every checkpoint, parsed and its signatures checked; those that hold are claims on the log.
        var claims: [Claim] = []
        func admit(_ source: String, table: String, _ text: String, external: Bool) {
            let note: SignedNote, checkpoint: LogCheckpoint
            do {
                note = try SignedNote(parsing: text)
                checkpoint = try LogCheckpoint(parsing: note.text)
            } catch {
                return fail(.badSignature, table, "\(source): not a signed checkpoint (\(error))")
            }
            let verdicts = keys.map { ($0, note.isSigned(by: $0.key)) }
            if let broken = verdicts.first(where: { $0.1 == false }) {
                return fail(.badSignature, table, "\(source): the signature of \(broken.0.key.name) (key \(broken.0.key.encoded)) does not verify")
            }
            let signers = verdicts.filter { $0.1 == true }.map(\.0)
            if !signers.isEmpty, !signers.contains(where: { $0.isValid(at: checkpoint.signedAt) }) {
                let windows = signers.map { "\($0.key.name) \($0.window)" }.joined(separator: ", ")
                return fail(.badSignature, table, """
                    \(source): signed \(LogCheckpointTime.text(checkpoint.signedAt)) by a key not valid then (\(windows)): \
                    a retired or not yet valid key
                    """)
            }
            guard !signers.isEmpty else {
                let signers = note.signatures.map { "\($0.name) \(String($0.keyID, radix: 16))" }.joined(separator: ", ")
                return fail(.badSignature, table, "\(source): signed by no trusted key (by \(signers.isEmpty ? "none" : signers))")
            }
            guard checkpoint.origin == origin else {
                return fail(.checkpointMismatch, table, "\(source): a checkpoint of another log (\(checkpoint.origin)), not this database's (\(origin))")
            }
            claims.append(Claim(source: source, checkpoint: checkpoint, external: external))
        }
        let stored = try connection.execute("SELECT tree_size, note FROM audit_checkpoint ORDER BY tree_size").rows
        for row in stored { admit("the checkpoint of \(row[0] ?? "?") batches", table: "audit_checkpoint", row[1] ?? "", external: false) }
        for checkpoint in externalCheckpoints { admit(checkpoint.name, table: "checkpoint file", checkpoint.note, external: true) }
        findings.storedCheckpoints = stored.count
        findings.externalCheckpoints = externalCheckpoints.count

        // The log, recomputed: one leaf per integrated batch and operation, from its record's digest.
        let wanted = Set(claims.map(\.checkpoint.size))
        var roots: [Int64: TreeHash] = [0: LogFrontier().root]
        var frontier = LogFrontier()
        var changedLeafNodes: [Int64] = []
        for row in try connection.execute("""
            SELECT l.log_index, l.kind, l.id, encode(l.digest, 'hex'), encode(n.hash, 'hex')
            FROM audit_log_leaf l LEFT JOIN audit_log_node n ON n.level = 0 AND n.index = l.log_index
            ORDER BY l.log_index
            """).rows {
            guard let position = row[0].flatMap({ Int64($0) }), let kind = row[1], let id = row[2].flatMap({ Int64($0) }) else { continue }
            if position != frontier.size {
                fail(.batchMissing, kind == "O" ? "audit_operation" : "audit_batch", batch: kind == "O" ? nil : id, position > frontier.size
                     ? "log positions \(frontier.size)..<\(position) hold no batch or operation: entries were removed from the log"
                     : "log position \(position) is held twice")
            }
            let leaf = BatchLog.leaf(kind: kind, id: id, digest: row[3].flatMap { TreeHash(hex: $0) } ?? .zero)
            if let stored = row[4], TreeHash(hex: stored) != leaf { changedLeafNodes.append(position) }
            frontier.append(leaf)
            if wanted.contains(frontier.size) { roots[frontier.size] = frontier.root }
        }
        findings.size = frontier.size
        try checkNodes(size: frontier.size, changedLeaves: changedLeafNodes, on: connection, fail: fail)
        for claim in claims {
            let checkpoint = claim.checkpoint, table = claim.external ? "checkpoint file" : "audit_checkpoint"
            let signed = LogCheckpointTime.text(checkpoint.signedAt)
            if checkpoint.size > frontier.size {
                fail(.tailCut, table, """
                    \(claim.source), signed \(signed), covers \(checkpoint.size) batches; the log holds \(frontier.size): \
                    batches after \(frontier.size) were removed after it was signed
                    """)
            } else if roots[checkpoint.size] != checkpoint.root {
                fail(.checkpointMismatch, table, """
                    \(claim.source), signed \(signed): the log's first \(checkpoint.size) batches hash to \
                    \(roots[checkpoint.size]?.description ?? "?"), the checkpoint says \(checkpoint.root): the log was rewritten
                    """)
            }
        }

        // Batches sealed but left out of the log, once a log has begun.
        let pending = try connection.query("""
            SELECT count(*), count(*) FILTER (WHERE committed_at < now() - make_interval(secs => $1)), min(id) FILTER (WHERE committed_at < now() - make_interval(secs => $1))
            FROM audit_batch WHERE log_index IS NULL
            """, [String(integrationGrace)]).rows.first
        findings.notIntegrated = pending?[0].flatMap { Int($0) } ?? 0
        if !stored.isEmpty, let late = pending?[1].flatMap({ Int($0) }), late > 0 {
            fail(.notIntegrated, "audit_batch", batch: pending?[2].flatMap { Int64($0) }, """
                \(late) batches committed more than \(Int(integrationGrace)) s ago are in no checkpoint: is `audit-ingest checkpoint` running?
                """)
        }
        return findings
    }

    /// The stored tree nodes (migration 0022) proofs are served from: each leaf node (checked by
    /// the caller, `changedLeaves`) is its entry's leaf hash, and each inner node the hash of its
    /// two children, which PostgreSQL computes (level by level, every node is so tied to the
    /// leaves). Nodes may be missing (the integrator refills them); none may lie beyond the log.
    private func checkNodes(size: Int64, changedLeaves: [Int64], on connection: PostgresConnection,
                            fail: (Category, String, Int64?, String) -> Void) throws {
        let remedy = "proofs served from it would not verify; DELETE FROM audit_log_node and the next checkpoint round stores the nodes again from the log"
        for position in changedLeaves.prefix(20) {
            fail(.logNodeChanged, "audit_log_node", nil, "the node of log entry \(position) (level 0) is not that entry's leaf hash: \(remedy)")
        }
        if changedLeaves.count > 20 { fail(.logNodeChanged, "audit_log_node", nil, "and \(changedLeaves.count - 20) more leaf nodes") }
        let inner = try connection.execute("""
            SELECT p.level, p.index, l.hash IS NULL OR r.hash IS NULL
            FROM audit_log_node p
            LEFT JOIN audit_log_node l ON l.level = p.level - 1 AND l.index = 2 * p.index
            LEFT JOIN audit_log_node r ON r.level = p.level - 1 AND r.index = 2 * p.index + 1
            WHERE p.level > 0 AND (l.hash IS NULL OR r.hash IS NULL OR p.hash <> sha256('\\x01'::bytea || l.hash || r.hash))
            ORDER BY p.level, p.index LIMIT 21
            """).rows
        for row in inner.prefix(20) {
            let orphan = row[2] == "t"
            fail(.logNodeChanged, "audit_log_node", nil, """
                the node (level \(row[0] ?? "?"), index \(row[1] ?? "?")) \(orphan ? "has no stored children" : "is not the hash of its two children"): \(remedy)
                """)
        }
        if inner.count > 20 { fail(.logNodeChanged, "audit_log_node", nil, "and more inner nodes") }
        // A node covers leaves [index·2^level, (index+1)·2^level): all of them must be in the log.
        let beyond = try connection.query("""
            SELECT count(*) OVER (), level, index FROM audit_log_node WHERE (index + 1) * (int8 '1' << level) > $1::bigint
            ORDER BY level, index LIMIT 1
            """, [String(size)]).rows.first
        if let count = beyond?[0].flatMap({ Int($0) }), count > 0 {
            fail(.logNodeChanged, "audit_log_node", nil, """
                \(count) stored nodes cover entries beyond the log's \(size) (e.g. level \(beyond?[1] ?? "?"), index \(beyond?[2] ?? "?")): \(remedy)
                """)
        }
    }
}
