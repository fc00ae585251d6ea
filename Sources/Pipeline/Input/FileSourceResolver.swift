import Logging
import Postgres

/// A file placed among what earlier runs stored, before the engine starts: the source its
/// positions are stored under, and where reading starts when that is not the stored position.
struct ResolvedFile {
    let file: FileSource
    /// The name in ingest_offsets and audit_dead_letter (`file:<head>`, `file:<head>~N`, `stdin:…`).
    let source: String
    /// Set for an older snapshot of a stored source: its last checkpoint, read from instead of
    /// the stored position (lines after it that the source stored are skipped as stored).
    let snapshotStart: FileSource.ResumePoint?
}

/// Decides what source each input continues, once, before any is read (DESIGN invariant 7 in
/// docs/design.md): a file is known by its first line, and the bytes an earlier run stored must
/// hash as they did. When they do not, the checkpoints earlier runs recorded (migration 0014)
/// tell another file with the same first line and an older snapshot from an edit; an edit is
/// refused unless `ifChanged` is `.newSource`.
///
/// Standard input cannot be read twice: its stored prefix is checked as it is read
/// (`FileIngestSource`).
struct FileSourceResolver {
    let ifChanged: ChangedSourcePolicy
    let logger: Logger

    func resolve(_ file: FileSource, on control: PostgresConnection) throws -> ResolvedFile {
        let source = try continuedSource(of: file, on: control)
        guard case .content = file.identity else { return ResolvedFile(file: file, source: source, snapshotStart: nil) }
        guard let stored = try OffsetStore(source: source).stored(partition: 0, on: control) else {
            try refuseEditedFirstLine(of: file, on: control)
            return ResolvedFile(file: file, source: source, snapshotStart: nil)
        }
        guard let change = try firstChange(of: file, against: stored) else {
            return ResolvedFile(file: file, source: source, snapshotStart: nil)
        }
        switch try verdict(on: change, of: file, source: source, storedFrom: stored.resumeOffset, on: control) {
        case .snapshot(let start):
            logger.notice("an older snapshot of a stored source: reading it from its last checkpoint, skipping what is stored",
                          metadata: [LogKey.file: "\(file.path)", LogKey.source: "\(source)", LogKey.byte: "\(start.offset)"])
            return ResolvedFile(file: file, source: source, snapshotStart: start)
        case .anotherFile:
            let next = try newGeneration(of: file, after: source, on: control,
                                         because: "another file with the same first line as source \(source)")
            return ResolvedFile(file: file, source: next, snapshotStart: nil)
        case .edited:
            guard ifChanged == .newSource else { throw Self.refusal(change, of: file, source: source) }
            let next = try newGeneration(of: file, after: source, on: control, because: "the file changed")
            return ResolvedFile(file: file, source: next, snapshotStart: nil)
        }
    }

    /// A file never stored under its first line may be a stored one with that line edited: its
    /// body (the lines after the first) is then a stored source's (`FileSource.Body`). Refused
    /// like any other edit, unless `ifChanged` is `.newSource`.
    private func refuseEditedFirstLine(of file: FileSource, on control: PostgresConnection) throws {
        guard let own = try file.body() else { return }
        for candidate in try OffsetStore.bodies(startingWith: own.secondLineHash, on: control) {
            guard let body = try file.body(length: candidate.length), body.hash == candidate.hash else { continue }
            guard ifChanged == .newSource else {
                throw IngestError(.sourceChanged, """
                    \(file.path) has the lines of source \(candidate.source) after its first line, but another first \
                    line: its first line was edited. Restore it, or run backfill with --if-changed new-source to \
                    ingest it as a new source (events already stored are then dead-lettered as duplicates).
                    """)
            }
            logger.notice("the first line of a stored source was edited: ingesting it as a new source", metadata: [
                LogKey.file: "\(file.path)", LogKey.editedSource: "\(candidate.source)", LogKey.source: "\(file.baseName)"])
            return
        }
    }

    /// The first stored position (the resume point, then those of shards further on) where the
    /// file no longer hashes as it did, or nil when it matches at every one.
    private func firstChange(of file: FileSource, against stored: PartitionPositions) throws -> FileSource.PrefixChanged? {
        var expected = stored.checkpointsAhead
        if stored.resumeOffset > 0, let hash = stored.resumeHash { expected.append((stored.resumeOffset, hash)) }
        guard !expected.isEmpty else { return nil }
        let found = try file.prefixHashes(at: expected.map(\.offset))
        guard let changed = expected.filter({ found[$0.offset] != $0.prefixHash }).min(by: { $0.offset < $1.offset }) else {
            return nil
        }
        return FileSource.PrefixChanged(offset: changed.offset, truncated: found[changed.offset] == nil)
    }

    /// What a failed prefix check means, by the checkpoints earlier runs recorded of the source.
    enum Verdict: Equatable {
        /// Not decided by the checkpoints: an edited or truncated file (refused).
        case edited
        /// It differs before the first checkpoint: another file that starts with the same line.
        case anotherFile
        /// It matches at every checkpoint it reaches and ends before the stored position: an
        /// older snapshot of what was stored, to read from its last checkpoint.
        case snapshot(FileSource.ResumePoint)
    }

    private func verdict(on change: FileSource.PrefixChanged, of file: FileSource, source: String, storedFrom resume: Int64,
                         on control: PostgresConnection) throws -> Verdict {
        let stored = try OffsetStore(source: source).checkpoints(on: control).filter { $0.offset <= resume }
        guard !stored.isEmpty else { return .edited }
        let found = try file.prefixHashes(at: stored.map(\.offset))
        let reached = stored.filter { found[$0.offset] != nil }
        guard let first = reached.first else { return .edited }  // shorter than the first checkpoint: cannot tell
        if found[first.offset] != first.prefixHash { return .anotherFile }
        guard change.truncated, reached.allSatisfy({ found[$0.offset] == $0.prefixHash }), let last = reached.last else { return .edited }
        return .snapshot(FileSource.ResumePoint(offset: last.offset, prefixHash: last.prefixHash))
    }

    /// The error for an edited or truncated file.
    static func refusal(_ change: FileSource.PrefixChanged, of file: FileSource, source: String) -> IngestError {
        let what = change.truncated
            ? "it is now shorter than the \(change.offset) bytes an earlier run stored"
            : "its first \(change.offset) bytes differ from the ones an earlier run stored"
        if case .standardInput(let name) = file.identity {
            return IngestError(.sourceChanged, """
                standard input (--source-name \(name.dropFirst("name:".count))) is not the stream an earlier run \
                of that name read: \(what). Give this stream another --source-name.
                """)
        }
        return IngestError(.sourceChanged, """
            \(file.path) continues source \(source) (same first line), but \(what): it was edited or \
            truncated. Restore it, or run backfill with --if-changed new-source to ingest it as a new \
            source (events already stored are then dead-lettered as duplicates).
            """)
    }

    /// A new generation of the file's source name (`file:<head>~N`), logged with why.
    private func newGeneration(of file: FileSource, after source: String, on control: PostgresConnection,
                               because reason: String) throws -> String {
        let next = try OffsetStore(source: source).nextGeneration(of: file.baseName, on: control)
        logger.notice("\(reason): ingesting it as a new source", metadata: [LogKey.file: "\(file.path)", LogKey.source: "\(next)"])
        return next
    }

    // MARK: Which stored source

    /// The stored source this input continues: for a file, the one with the same first line whose
    /// stored prefix matches (the furthest, when edits made several), else a new one.
    private func continuedSource(of file: FileSource, on control: PostgresConnection) throws -> String {
        guard case .content = file.identity else { return file.baseName }
        let store = OffsetStore(source: file.baseName)
        var generations = try store.generations(of: file.baseName, on: control)
        if generations.isEmpty, let legacy = file.legacyBaseName {
            // Stored by a version that fingerprinted the first line with its line break.
            generations = try store.generations(of: legacy, on: control)
        }
        // A file that was blank lines only when an earlier run read it had an empty head then:
        // it continues that source if its stored prefix matches.
        var grownFromBlank: [(source: String, resume: FileSource.ResumePoint)] = []
        if file.startsBlank {
            let blank = try store.generations(of: FileSource.blankHeadName, on: control).filter { $0.resume.offset > 0 }
            if !blank.isEmpty {
                let hashes = try file.prefixHashes(at: blank.map(\.resume.offset))
                grownFromBlank = blank.filter { $0.resume.prefixHash == hashes[$0.resume.offset] }
            }
        }
        guard generations.count + grownFromBlank.count > 1 else {
            return generations.first?.source ?? grownFromBlank.first?.source ?? file.baseName
        }
        let hashes = try file.prefixHashes(at: generations.map(\.resume.offset))
        let matching = generations.filter { generation in
            generation.resume.offset == 0 || generation.resume.prefixHash == hashes[generation.resume.offset]
        } + grownFromBlank
        if matching.isEmpty, let snapshotOf = try snapshotSource(of: file, among: generations.map(\.source), on: control) {
            return snapshotOf
        }
        // None matches: take the furthest, whose check fails with the error that explains.
        return (matching.isEmpty ? generations : matching).max { $0.resume.offset < $1.resume.offset }!.source
    }

    /// The one of `sources` this input is an older snapshot of: it matches every checkpoint of
    /// that source it reaches, and reaches one.
    private func snapshotSource(of file: FileSource, among sources: [String], on control: PostgresConnection) throws -> String? {
        for source in sources {
            let checkpoints = try OffsetStore(source: source).checkpoints(on: control)
            guard !checkpoints.isEmpty else { continue }
            let found = try file.prefixHashes(at: checkpoints.map(\.offset))
            let reached = checkpoints.filter { found[$0.offset] != nil }
            if !reached.isEmpty, reached.allSatisfy({ found[$0.offset] == $0.prefixHash }) { return source }
        }
        return nil
    }
}

/// What backfill does with a file whose stored part has changed since an earlier run.
package enum ChangedSourcePolicy: String, Sendable, CaseIterable {
    /// Stop with an error naming the file (the default).
    case refuse
    /// Ingest it from the start as a new source (`file:<head>~N`).
    case newSource = "new-source"
}
