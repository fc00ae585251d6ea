import AuditCore
import Foundation
import Logging
import Postgres
import Synchronization

/// Files (and standard input) as one source of the engine: every input of a run through one
/// engine start, so a thousand small delivery files cost a thousand commits, not a thousand
/// starts. Each source the inputs resolve to is an engine partition, stored as partition 0 of
/// that source; positions are byte offsets.
///
/// The inputs are read one after the other. Each is resolved (`FileSourceResolver`: which
/// stored source it continues, or a refusal) just before it is read, once everything read
/// before it is committed, so a run that holds a file twice, or a file and an older copy of
/// it, finds the first one stored. `finished` then gets each input's summary.
public final class FileIngestSource: IngestSource {
    private let files: [FileSource]
    private let resolver: FileSourceResolver
    private let finished: ((String, IngestSummary) -> Void)?
    /// Per input resolved so far, its source (read by the flushers through `streams`).
    private let sources = ResolvedSources()
    private var first: ResolvedFile?
    private let logger: Logger

    /// - Parameter ifChanged: what to do with a file whose stored part has changed since.
    /// - Parameter finished: called on the reading thread with each input's path and summary,
    ///   once what was read of it is committed.
    public init(_ files: [FileSource], ifChanged: ChangedSourcePolicy = .refuse, logger: Logger,
                finished: ((String, IngestSummary) -> Void)? = nil) {
        precondition(!files.isEmpty, "a file source needs an input")
        self.files = files
        self.resolver = FileSourceResolver(ifChanged: ifChanged, logger: logger)
        self.finished = finished
        self.logger = logger
    }

    /// Resolves the first input (an edited file alone is refused before the engine starts); the
    /// run's name is the one input's source, or "N files".
    public func identify(on control: PostgresConnection) throws -> String {
        let first = try resolver.resolve(files[0], on: control)
        self.first = first
        return files.count == 1 ? first.source : "\(files.count) files"
    }

    public func streams(named name: String) -> SourceStreams {
        guard files.count > 1 else { return .single(name) }
        let sources = sources
        return SourceStreams(name: name) { partition in SourceStreams.Location(source: sources[Int(partition)], partition: 0) }
    }

    public func run(into feed: IngestFeed) throws -> SourceTotals {
        var totals = SourceTotals(messages: 0)
        var bytesBefore = 0
        for (index, file) in files.enumerated() where !feed.shouldStop {
            let before = (statistics: feed.statistics.snapshot, partitions: feed.partitionsCreated, started: ContinuousClock.now)
            // The first was resolved by `identify`, before the engine started.
            let input = try index == 0 ? first ?? resolve(file, feed) : resolve(file, feed)
            let partition = sources.partition(of: input.source)
            guard let stored = try feed.assign([partition]) else { break }
            let read = try FileReading(input: input, partition: partition, adopted: stored.byPartition[partition], logger: logger)
                .read(into: feed, bytesBefore: bytesBefore)
            totals.messages += read.messages
            totals.skippedBeforeResume += read.skippedBeforeResume
            totals.heldBackBytes += read.heldBackBytes
            bytesBefore += read.bytesRead
            // Committed before the next input is resolved: it may continue the same source.
            guard feed.drain() else { break }
            finished?(file.path, summary(of: input, read, since: before, feed))
        }
        return totals
    }

    private func resolve(_ file: FileSource, _ feed: IngestFeed) throws -> ResolvedFile {
        try feed.onControl { try resolver.resolve(file, on: $0) }
    }

    private func summary(of input: ResolvedFile, _ read: FileReading.Totals,
                         since before: (statistics: IngestStatistics.Snapshot, partitions: Int, started: ContinuousClock.Instant),
                         _ feed: IngestFeed) -> IngestSummary {
        let now = feed.statistics.snapshot
        let deadLettered = now.deadLettered.merging(before.statistics.deadLettered.mapValues { -$0 }, uniquingKeysWith: +)
            .filter { $0.value != 0 }
        return IngestSummary(
            source: input.source, messages: read.messages, extraRecords: now.extraRecords - before.statistics.extraRecords,
            alreadyCommitted: read.skippedBeforeResume + Int64(now.alreadyCommitted - before.statistics.alreadyCommitted),
            stored: now.stored - before.statistics.stored, deadLettered: deadLettered,
            partitionsCreated: feed.partitionsCreated - before.partitions,
            seconds: before.started.duration(to: .now).secondsDouble, bytesRead: read.bytesRead,
            stopped: feed.shouldStop, heldBackBytes: read.heldBackBytes)
    }
}

/// The sources the inputs of a run resolved to, each an engine partition: added on the reading
/// thread before an input's first message, read by the flushers when they store positions. An
/// input that continues a source read earlier in the run (a file given twice) reads as that
/// source's partition again: one source is never two partitions.
private final class ResolvedSources: Sendable {
    private let names = Mutex<[String]>([])

    func partition(of source: String) -> Int32 {
        names.withLock { names in
            if let known = names.firstIndex(of: source) { return Int32(known) }
            names.append(source)
            return Int32(names.count - 1)
        }
    }

    subscript(partition: Int) -> String { names.withLock { $0[partition] } }
}

/// One input read into the feed as engine partition `partition`.
private struct FileReading {
    let input: ResolvedFile
    let partition: Int32
    let adopted: PartitionPositions?
    let logger: Logger

    struct Totals {
        var messages: Int64
        var skippedBeforeResume: Int64
        var heldBackBytes: Int
        /// Bytes read of the file (compressed bytes for .gz).
        var bytesRead: Int
    }

    private var file: FileSource { input.file }
    private var name: String { input.source }

    func read(into feed: IngestFeed, bytesBefore: Int) throws -> Totals {
        let resume = input.snapshotStart ?? FileSource.ResumePoint(offset: adopted?.resumeOffset ?? 0, prefixHash: adopted?.resumeHash)
        if resume.offset > 0 { logger.info("resuming", metadata: ["source": "\(name)", "byte": "\(resume.offset)"]) }
        let maxLineBytes = feed.configuration.maxMessageBytes
        var sinceWatermark = 0
        var checkpoints: [FileSource.Checkpoint] = []
        var checkpointDue = FileSource.nextCheckpoint(after: resume.offset)
        var bytesRead = 0
        defer { record(checkpoints, in: feed) }
        let totals: FileSource.ReadTotals
        do {
            totals = try file.read(
                from: resume, maxLineBytes: maxLineBytes,
                line: { position, bytes in
                    if position.next >= checkpointDue {
                        checkpoints.append(FileSource.Checkpoint(offset: position.next, prefixHash: position.nextPrefixHash))
                        checkpointDue = FileSource.nextCheckpoint(after: position.next)
                    }
                    let next = Mark(next: position.next, prefixHash: position.nextPrefixHash)
                    feed.message(partition: partition, offset: position.offset, next: next, bytes: bytes)
                    sinceWatermark += 1
                    if sinceWatermark == 8192 {
                        sinceWatermark = 0
                        try feed.watermark(partition: partition, next: next)
                    }
                    return !feed.shouldStop
                },
                oversized: { position, prefix in
                    feed.reject(partition: partition, offset: position.offset,
                                next: Mark(next: position.next, prefixHash: position.nextPrefixHash), rawMessage: prefix,
                                rejection: Rejection(.tooLarge, """
                                    line of \(position.next - position.offset) bytes, longer than \(maxLineBytes); \
                                    raw_payload holds its first KiB
                                    """))
                },
                progress: { bytes in
                    bytesRead = bytes
                    feed.statistics.update { $0.bytesRead = bytesBefore + bytes }
                },
                beforeRead: feed.handOverRows)
        } catch let change as FileSource.PrefixChanged {
            // Standard input (checked only as it is read), or a file changed since it was resolved.
            throw FileSourceResolver.refusal(change, of: file, source: name)
        }
        try feed.watermark(partition: partition, next: Mark(next: totals.end, prefixHash: totals.endPrefixHash))
        if totals.heldBack > 0 {
            logger.notice("the last line has no newline and is not whole JSON yet: left for a later run", metadata: [
                "source": "\(name)", "bytes": "\(totals.heldBack)", "at_byte": "\(totals.end)"])
        }
        return Totals(messages: totals.lines, skippedBeforeResume: totals.linesBeforeStart, heldBackBytes: totals.heldBack,
                      bytesRead: bytesRead)
    }

    /// Records facts about the file's content for later runs (best effort): its checkpoints, and
    /// its body (`FileSourceResolver`; the first one recorded stays).
    private func record(_ checkpoints: [FileSource.Checkpoint], in feed: IngestFeed) {
        guard case .content = file.identity else { return }
        if !checkpoints.isEmpty {
            feed.bestEffort("record the checkpoints of \(name)") { try OffsetStore(source: name).record(checkpoints, on: $0) }
        }
        if let body = try? file.body() {
            feed.bestEffort("record the body of \(name)") { try OffsetStore(source: name).record(body, on: $0) }
        }
    }
}
