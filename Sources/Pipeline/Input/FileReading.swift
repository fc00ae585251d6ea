import AuditCore
import Foundation
import Logging
import Postgres
import Synchronization

/// One input read as engine partition `partition`, a batch at a time.
final class FileReading {
    let input: ResolvedFile
    let partition: Int32
    private let reader: any FileSource.MessageReader
    private let run: SourceRun
    private let logger: Logger
    private let before: (statistics: IngestStatistics.Snapshot, partitions: Int, started: ContinuousClock.Instant)
    private let bytesBefore: Int
    /// The file's checkpoints met so far, and where the next one is due.
    private var checkpoints: [FileSource.Checkpoint] = []
    private var checkpointDue: Int64
    /// Set once the input has ended.
    private(set) var totals = SourceTotals(messages: 0)

    private var file: FileSource { input.file }
    private var name: String { input.source }
    var bytesRead: Int { reader.bytesRead }
    var counted: (messages: Int64, beforeStart: Int64) { reader.counted }

    init(input: ResolvedFile, partition: Int32, adopted: PartitionPositions?, bytesBefore: Int, run: SourceRun, logger: Logger) throws {
        self.input = input
        self.partition = partition
        self.run = run
        self.logger = logger
        self.bytesBefore = bytesBefore
        before = (run.statistics.snapshot, run.partitionsCreated, .now)
        let resume = input.snapshotStart ?? FileSource.ResumePoint(offset: adopted?.resumeOffset ?? 0, prefixHash: adopted?.resumeHash)
        if resume.offset > 0 { logger.info("resuming", metadata: [LogKey.source: "\(input.source)", LogKey.byte: "\(resume.offset)"]) }
        checkpointDue = FileSource.nextCheckpoint(after: resume.offset)
        reader = try input.file.reader(from: resume, maxLineBytes: run.configuration.maxMessageBytes)
    }

    /// Reads up to `limit` messages into `batch`, with a watermark after them. Returns true once
    /// the input has ended (the batch then ends with the input's end as its watermark).
    func read(upTo limit: Int, into batch: SourceBatch, _ run: SourceRun) throws -> Bool {
        let (partition, maxLineBytes) = (partition, run.configuration.maxMessageBytes)
        var last: Mark?
        let ended: FileSource.ReadTotals?
        do {
            ended = try reader.read(
                upTo: limit,
                message: { position, bytes in
                    if position.next >= checkpointDue {
                        checkpoints.append(FileSource.Checkpoint(offset: position.next, prefixHash: position.nextPrefixHash))
                        checkpointDue = FileSource.nextCheckpoint(after: position.next)
                    }
                    let next = Mark(next: position.next, prefixHash: position.nextPrefixHash)
                    batch.append(partition: partition, offset: position.offset, next: next, bytes: bytes)
                    last = next
                },
                oversized: { position, prefix in
                    let next = Mark(next: position.next, prefixHash: position.nextPrefixHash)
                    batch.reject(partition: partition, offset: position.offset, next: next, raw: prefix,
                                 rejection: Rejection(.tooLarge, """
                                    line of \(position.next - position.offset) bytes, longer than \(maxLineBytes); \
                                    raw_payload holds its first KiB
                                    """))
                    last = next
                })
        } catch let change as FileSource.PrefixChanged {
            // Standard input (checked only as it is read), or a file changed since it was resolved.
            throw FileSourceResolver.refusal(change, of: file, source: name)
        }
        let bytes = bytesBefore + reader.bytesRead
        run.statistics.update { $0.bytesRead = bytes }
        guard let ended else {
            if let last { batch.watermark(partition: partition, next: last) }
            return false
        }
        batch.watermark(partition: partition, next: Mark(next: ended.end, prefixHash: ended.endPrefixHash))
        if ended.heldBack > 0 {
            logger.notice("the last line has no newline and is not whole JSON yet: left for a later run", metadata: [
                LogKey.source: "\(name)", LogKey.bytes: "\(ended.heldBack)", LogKey.atByte: "\(ended.end)"])
        }
        totals = SourceTotals(messages: ended.lines, skippedBeforeResume: ended.linesBeforeStart, heldBackBytes: ended.heldBack)
        return true
    }

    /// What this input did, once it is committed.
    func summary(stopped: Bool) -> IngestSummary {
        let now = run.statistics.snapshot
        let deadLettered = now.deadLettered.merging(before.statistics.deadLettered.mapValues { -$0 }, uniquingKeysWith: +)
            .filter { $0.value != 0 }
        return IngestSummary(
            source: name, messages: totals.messages, extraRecords: now.extraRecords - before.statistics.extraRecords,
            alreadyCommitted: totals.skippedBeforeResume + Int64(now.alreadyCommitted - before.statistics.alreadyCommitted),
            stored: now.stored - before.statistics.stored, deadLettered: deadLettered,
            partitionsCreated: run.partitionsCreated - before.partitions,
            seconds: before.started.duration(to: .now).secondsDouble, bytesRead: reader.bytesRead,
            stopped: stopped, heldBackBytes: totals.heldBackBytes)
    }

    /// Records facts about the file's content for later runs (best effort): its checkpoints, and
    /// its body (`FileSourceResolver`; the first one recorded stays).
    func recordFacts() {
        guard case .content = file.identity else { return }
        let (name, checkpoints) = (name, checkpoints)
        if !checkpoints.isEmpty {
            run.control.bestEffort("record the checkpoints of \(name)") { try OffsetStore(source: name).record(checkpoints, on: $0) }
        }
        if let body = try? file.body() {
            run.control.bestEffort("record the body of \(name)") { try OffsetStore(source: name).record(body, on: $0) }
        }
    }
}
