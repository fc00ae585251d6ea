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
    private let logger: Logger

    /// - Parameter continuing: the stored source to continue; nil for the one this input
    ///   continues by its content (see `identify`).
    init(_ file: FileSource, continuing name: String?, logger: Logger) {
        self.file = file
        self.name = name ?? ""
        self.logger = logger
    }

    func identify(on control: PostgresConnection) throws -> String {
        if name.isEmpty { name = try continuedSource(on: control) }
        return name
    }

    func run(into feed: IngestFeed) throws -> SourceTotals {
        do {
            return try read(into: feed)
        } catch let change as FileSource.PrefixChanged {
            throw Changed(change: change, source: name)
        }
    }

    /// The part an earlier run stored of `source` has changed since.
    struct Changed: Error {
        var change: FileSource.PrefixChanged
        var source: String
    }

    private func read(into feed: IngestFeed) throws -> SourceTotals {
        guard let stored = try feed.assign([0]) else { return SourceTotals(messages: 0) }
        let adopted = stored.byPartition[0]
        let resume = FileSource.ResumePoint(offset: adopted?.resumeOffset ?? 0, prefixHash: adopted?.resumeHash)
        if resume.offset > 0 { logger.info("resuming", metadata: ["source": "\(name)", "byte": "\(resume.offset)"]) }
        try checkUnchanged(after: resume, adopted)

        let maxLineBytes = feed.configuration.maxMessageBytes
        var sinceWatermark = 0
        let totals = try file.read(
            from: resume, maxLineBytes: maxLineBytes,
            line: { position, bytes in
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
        // None matches: take the furthest, whose check fails with the error that explains.
        return (matching.isEmpty ? generations : matching).max { $0.resume.offset < $1.resume.offset }!.source
    }
}
