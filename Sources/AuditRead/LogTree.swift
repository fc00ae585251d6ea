import Evidence
import Postgres

/// Hashes of ranges of the log's leaves for proofs: from the stored tree nodes (migration 0022),
/// O(log² n) of them in one query; from every leaf when a node is missing (a log the integrator
/// has not yet filled in).
enum LogTree {
    static func hashes(of ranges: [LeafRange], size: Int64, on connection: PostgresConnection) throws -> [TreeHash] {
        let wanted = Array(Set(ranges.flatMap(\.nodes)))
        var stored: [LogNodeID: TreeHash] = [:]
        if !wanted.isEmpty {
            for row in try connection.query("""
                SELECT n.level, n.index, encode(n.hash, 'hex')
                FROM unnest($1::smallint[], $2::bigint[]) AS w(level, index) JOIN audit_log_node n USING (level, index)
                """, ["{" + wanted.map { String($0.level) }.joined(separator: ",") + "}",
                      "{" + wanted.map { String($0.index) }.joined(separator: ",") + "}"]).rows {
                guard let level = row[0].flatMap({ Int($0) }), let index = row[1].flatMap({ Int64($0) }),
                      let hash = row[2].flatMap({ TreeHash(hex: $0) }) else { continue }
                stored[LogNodeID(level: level, index: index)] = hash
            }
        }
        let fromNodes = ranges.compactMap { $0.hash(stored) }
        if fromNodes.count == ranges.count { return fromNodes }
        let leaves = try connection.query("""
            SELECT kind, id, encode(digest, 'hex') FROM audit_log_leaf WHERE log_index < $1::bigint ORDER BY log_index
            """, [String(size)]).rows.map { row in
            BatchLog.leaf(kind: row[0] ?? "", id: row[1].flatMap { Int64($0) } ?? 0, digest: row[2].flatMap { TreeHash(hex: $0) } ?? .zero)
        }
        guard leaves.count == size else {
            throw ReadError(kind: .notFound, message: "the log holds \(leaves.count) entries, its checkpoint covers \(size): run `audit-ingest verify`")
        }
        return ranges.map { $0.hash(leaves: leaves) }
    }
}
