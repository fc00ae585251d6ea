import AuditCore
import Logging
import Postgres

/// A file (or standard input) as a source of the engine: one partition, 0, whose positions are
/// byte offsets. It resumes at the lowest position any shard stored, after checking that the
/// bytes before every stored position are the ones that were stored (`FileSource.PrefixChanged`
/// otherwise).
final class FileIngestSource: IngestSource {
    private let file: FileSource
    private var name: String
    /// Where an older snapshot of the stored content starts instead of the stored position: its
    /// last checkpoint (lines after it that the source stored are skipped as stored).
    private let snapshotStart: FileSource.ResumePoint?
    private let logger: Logger

    /// - Parameter continuing: the stored source to continue; nil for the one this input
    ///   continues by its content (see `identify`).
    /// - Parameter snapshotStart: set when the input is an older snapshot (`Verdict.snapshot`).
    init(_ file: FileSource, continuing name: String?, snapshotStart: FileSource.ResumePoint? = nil, logger: Logger) {
        self.file = file
        self.name = name ?? ""
        self.snapshotStart = snapshotStart
        self.logger = logger
    }

    func identify(on control: PostgresConnection) throws -> String {
        if name.isEmpty { name = try continuedSource(on: control) }
        return name
    }

    func run(into feed: IngestFeed) throws -> SourceTotals {
        guard let stored = try feed.assign([0]) else { return SourceTotals(messages: 0) }
        let adopted = stored.byPartition[0]
        do {
            return try read(into: feed, adopted)
        } catch let change as FileSource.PrefixChanged {
            throw Changed(change: change, source: name,
                          verdict: snapshotStart == nil ? judge(change, storedFrom: adopted?.resumeOffset ?? 0, feed: feed) : .edited)
        }
    }

    /// The part an earlier run stored of `source` has changed since.
    struct Changed: Error {
        var change: FileSource.PrefixChanged
        var source: String
        var verdict: Verdict
    }

    /// What a failed prefix check means, by the checkpoints earlier runs recorded of the source
    /// (migration 0014).
    enum Verdict {
        /// Not decided by the checkpoints: an edited or truncated file (refused).
        case edited
        /// It differs before the first checkpoint: another file that starts with the same line.
        case anotherFile
        /// It matches at every checkpoint it reaches and ends before the stored position: an
        /// older snapshot of what was stored, to read from its last checkpoint.
        case snapshot(FileSource.ResumePoint)
    }

    private func judge(_ change: FileSource.PrefixChanged, storedFrom resume: Int64, feed: IngestFeed) -> Verdict {
        guard case .content = file.identity else { return .edited }
        var checkpoints: [FileSource.Checkpoint] = []
        feed.bestEffort("read the checkpoints of \(name)") { checkpoints = try OffsetStore(source: name).checkpoints(on: $0) }
        let stored = checkpoints.filter { $0.offset <= resume }
        guard !stored.isEmpty, let found = try? file.prefixHashes(at: stored.map(\.offset)) else { return .edited }
        let reached = stored.filter { found[$0.offset] != nil }
        guard let first = reached.first else { return .edited }  // shorter than the first checkpoint: cannot tell
        if found[first.offset] != first.prefixHash { return .anotherFile }
        guard change.truncated, reached.allSatisfy({ found[$0.offset] == $0.prefixHash }), let last = reached.last else { return .edited }
        return .snapshot(FileSource.ResumePoint(offset: last.offset, prefixHash: last.prefixHash))
    }

    private func read(into feed: IngestFeed, _ adopted: PartitionPositions?) throws -> SourceTotals {
        let resume = snapshotStart ?? FileSource.ResumePoint(offset: adopted?.resumeOffset ?? 0, prefixHash: adopted?.resumeHash)
        if resume.offset > 0 { logger.info("resuming", metadata: ["source": "\(name)", "byte": "\(resume.offset)"]) }
        if snapshotStart == nil { try checkUnchanged(after: resume, adopted) }

        let maxLineBytes = feed.configuration.maxMessageBytes
        var sinceWatermark = 0
        var checkpoints: [FileSource.Checkpoint] = []
        var checkpointDue = FileSource.nextCheckpoint(after: resume.offset)
        defer {
            if case .content = file.identity, !checkpoints.isEmpty {
                feed.bestEffort("record the checkpoints of \(name)") { try OffsetStore(source: name).record(checkpoints, on: $0) }
            }
        }
        let totals = try file.read(
            from: resume, maxLineBytes: maxLineBytes,
            line: { position, bytes in
                if position.next >= checkpointDue {
                    checkpoints.append(FileSource.Checkpoint(offset: position.next, prefixHash: position.nextPrefixHash))
                    checkpointDue = FileSource.nextCheckpoint(after: position.next)
                }
                let next = Mark(next: position.next, prefixHash: position.nextPrefixHash)
                feed.message(partition: 0, offset: position.offset, next: next, bytes: bytes)
                sinceWatermark += 1
                if sinceWatermark == 8192 {
                    sinceWatermark = 0
                    try feed.watermark(partition: 0, next: next)
                }
                return !feed.shouldStop
            },
            oversized: { position, prefix in
                feed.reject(partition: 0, offset: position.offset,
                            next: Mark(next: position.next, prefixHash: position.nextPrefixHash), rawMessage: prefix,
                            rejection: Rejection(.tooLarge, """
                                line of \(position.next - position.offset) bytes, longer than \(maxLineBytes); \
                                raw_payload holds its first KiB
                                """))
            },
            progress: { bytes in feed.statistics.update { $0.bytesRead = bytes } },
            beforeRead: feed.handOverRows)
        try feed.watermark(partition: 0, next: Mark(next: totals.end, prefixHash: totals.endPrefixHash))
        if totals.heldBack > 0 {
            logger.notice("the last line has no newline and is not whole JSON yet: left for a later run", metadata: [
                "source": "\(name)", "bytes": "\(totals.heldBack)", "at_byte": "\(totals.end)"])
        }
        return SourceTotals(messages: totals.lines, skippedBeforeResume: totals.linesBeforeStart, heldBackBytes: totals.heldBack)
    }

    /// Shards that stopped further on stored lines past the resume point: those bytes must be
    /// unchanged too, or edited lines there would be taken as stored.
    private func checkUnchanged(after resume: FileSource.ResumePoint, _ adopted: PartitionPositions?) throws {
        guard let ahead = adopted?.checkpointsAhead, !ahead.isEmpty, !file.isStandardInput else { return }
        let found = try file.prefixHashes(at: ahead.map(\.offset))
        if let changed = ahead.filter({ found[$0.offset] != $0.prefixHash }).min(by: { $0.offset < $1.offset }) {
            throw FileSource.PrefixChanged(offset: changed.offset, truncated: found[changed.offset] == nil)
        }
    }

    /// The stored source this input continues: for a file, the one with the same first line whose
    /// stored prefix matches (the furthest, when edits made several), else a new one.
    private func continuedSource(on control: PostgresConnection) throws -> String {
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
        if matching.isEmpty, let snapshotOf = try snapshotSource(among: generations.map(\.source), on: control) {
            return snapshotOf
        }
        // None matches: take the furthest, whose check fails with the error that explains.
        return (matching.isEmpty ? generations : matching).max { $0.resume.offset < $1.resume.offset }!.source
    }

    /// The one of `sources` this input is an older snapshot of: it matches every checkpoint of
    /// that source it reaches, and reaches one.
    private func snapshotSource(among sources: [String], on control: PostgresConnection) throws -> String? {
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
