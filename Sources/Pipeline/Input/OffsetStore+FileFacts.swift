import Postgres

/// What the store keeps about file sources beside their positions: generations (a file ingested
/// anew after an edit), checkpoints of its prefix, and the hash of its body. `FileSourceResolver`
/// reads them before a file is read; `FileIngestSource` records them once the file is committed.
extension OffsetStore {
    /// Sources whose name is `baseName` or `baseName~N` (a file whose first line matched and
    /// that was ingested anew after an edit), with what each stored of partition 0.
    package func generations(of baseName: String, on connection: PostgresConnection) throws -> [(source: String, resume: FileSource.ResumePoint)] {
        let rows = try connection.query("""
            SELECT DISTINCT ON (source) source, next_offset, prefix_hash FROM ingest_offsets
            WHERE (source = $1 OR source LIKE $2) AND "partition" = 0
            ORDER BY source, next_offset, shard
            """, [baseName, baseName + "~%"]).rows
        return rows.compactMap { row in
            guard let source = row[0], let next = row[1].flatMap({ Int64($0) }) else { return nil }
            return (source, FileSource.ResumePoint(offset: next, prefixHash: row[2].flatMap { Int64($0) }))
        }
    }

    /// The checkpoints recorded for file source `source` (`FileSource.Checkpoint`), by offset.
    package func checkpoints(on connection: PostgresConnection) throws -> [FileSource.Checkpoint] {
        try connection.query(#"SELECT "offset", prefix_hash FROM source_checkpoint WHERE source = $1 ORDER BY 1"#, [source]).rows
            .compactMap { row in
                guard let offset = row[0].flatMap({ Int64($0) }), let hash = row[1].flatMap({ Int64($0) }) else { return nil }
                return FileSource.Checkpoint(offset: offset, prefixHash: hash)
            }
    }

    /// Records checkpoints of file source `source` (kept when already there).
    package func record(_ checkpoints: [FileSource.Checkpoint], on connection: PostgresConnection) throws {
        guard !checkpoints.isEmpty else { return }
        try connection.query("""
            INSERT INTO source_checkpoint (source, "offset", prefix_hash)
            SELECT $1, o, h FROM unnest($2::bigint[], $3::bigint[]) AS c(o, h)
            ON CONFLICT DO NOTHING
            """, [source, "{" + checkpoints.map { "\($0.offset)" }.joined(separator: ",") + "}",
                  "{" + checkpoints.map { "\($0.prefixHash)" }.joined(separator: ",") + "}"])
    }

    /// Records the body of file source `source` (`FileSource.Body`; kept when already there).
    package func record(_ body: FileSource.Body, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO source_body (source, second_line_hash, body_length, body_hash) VALUES ($1, $2, $3, $4)
            ON CONFLICT DO NOTHING
            """, [source, String(body.secondLineHash), String(body.length), String(body.hash)])
    }

    /// The stored file sources whose recorded body starts with a line that hashes to
    /// `secondLineHash`, with the length and hash of their body.
    package static func bodies(startingWith secondLineHash: Int64,
                              on connection: PostgresConnection) throws -> [(source: String, length: Int64, hash: Int64)] {
        try connection.query("""
            SELECT source, body_length, body_hash FROM source_body WHERE second_line_hash = $1 ORDER BY source
            """, [String(secondLineHash)]).rows.compactMap { row in
            guard let source = row[0], let length = row[1].flatMap({ Int64($0) }), let hash = row[2].flatMap({ Int64($0) }) else { return nil }
            return (source, length, hash)
        }
    }

    /// A name for a new generation of `baseName`: `baseName~N` after the highest one stored.
    package func nextGeneration(of baseName: String, on connection: PostgresConnection) throws -> String {
        let highest = try generations(of: baseName, on: connection).compactMap { generation -> Int? in
            generation.source == baseName ? 1 : generation.source.split(separator: "~").last.flatMap { Int($0) }
        }.max() ?? 1
        return "\(baseName)~\(highest + 1)"
    }
}
