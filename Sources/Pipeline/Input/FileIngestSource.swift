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
final class FileIngestSource: IngestSource {
    private let files: [FileSource]
    private let resolver: FileSourceResolver
    private let finished: ((String, IngestSummary) -> Void)?
    /// Per input resolved so far, its source (read by the flushers through `streams`).
    private let sources = ResolvedSources()
    private var first: ResolvedFile?
    private let logger: Logger
    private var run: SourceRun?
    private var batch: SourceBatch?
    /// Where the current input stands: resolving (its source), assigning (its positions), reading,
    /// finishing (committing).
    private enum Phase {
        case resolving
        case assigning(ResolvedFile, Int32)
        case reading(FileReading)
        case finishing(FileReading)
    }
    private var phase = Phase.resolving
    /// The input being read (an index into `files`).
    private var index = 0
    /// Bytes read of the inputs before the current one.
    private var bytesBefore = 0
    /// What the inputs finished so far held.
    private var finishedTotals = SourceTotals(messages: 0)

    /// What the inputs held: those finished, and what was read of the current one.
    package var totals: SourceTotals {
        var totals = finishedTotals
        switch phase {
        case .reading(let reading):
            let counted = reading.counted
            totals.messages += counted.messages
            totals.skippedBeforeResume += counted.beforeStart
        case .finishing(let reading):
            totals.messages += reading.totals.messages
            totals.skippedBeforeResume += reading.totals.skippedBeforeResume
            totals.heldBackBytes += reading.totals.heldBackBytes
        case .resolving, .assigning:
            break
        }
        return totals
    }

    /// - Parameter ifChanged: what to do with a file whose stored part has changed since.
    /// - Parameter finished: called on the reading thread with each input's path and summary,
    ///   once what was read of it is committed.
    package init(_ files: [FileSource], ifChanged: ChangedSourcePolicy = .refuse, logger: Logger,
                finished: ((String, IngestSummary) -> Void)? = nil) {
        precondition(!files.isEmpty, "a file source needs an input")
        self.files = files
        self.resolver = FileSourceResolver(ifChanged: ifChanged, logger: logger)
        self.finished = finished
        self.logger = logger
    }

    /// Resolves the first input (an edited file alone is refused before the engine starts); the
    /// run's name is the one input's source, or "N files".
    package func identify(on control: PostgresConnection) throws -> String {
        let first = try resolver.resolve(files[0], on: control)
        self.first = first
        return files.count == 1 ? first.source : "\(files.count) files"
    }

    package func streams(named name: String) -> SourceStreams {
        guard files.count > 1 else { return .single(name) }
        let sources = sources
        return SourceStreams(name: name) { partition in SourceStreams.Location(source: sources[Int(partition)], partition: 0) }
    }

    package func open(_ run: SourceRun) throws {
        self.run = run
        batch = SourceBatch(reservingCapacity: Self.batchLimit)
    }

    /// At most this many messages per batch, with a watermark each: positions advance at least
    /// this often on shards the lines do not reach.
    static let batchLimit = 8192

    package func next(room: Int) throws -> SourceEvent {
        guard let run, let batch else { preconditionFailure("open first") }
        switch phase {
        case .resolving:
            guard index < files.count else { return .end }
            // The first was resolved by `identify`, before the engine started; each later one once
            // everything before it is committed: it may continue the same source.
            let input = try index == 0 ? first ?? resolve(files[0], run) : resolve(files[index], run)
            let partition = sources.partition(of: input.source)
            phase = .assigning(input, partition)
            return .assigned([partition])
        case .assigning:
            preconditionFailure("confirm the assignment first")
        case .reading(let reading):
            guard room > 0 else { return .idle }
            batch.removeAll()
            let ended = try reading.read(upTo: min(room, Self.batchLimit), into: batch, run)
            if ended { phase = .finishing(reading) }
            return .messages(batch)
        case .finishing(let reading):
            return .revoked([reading.partition])
        }
    }

    package func confirm(_ partitions: [Int32], stored: StoredPositions) throws {
        guard case .assigning(let input, let partition) = phase, let run else { preconditionFailure("nothing is being assigned") }
        phase = .reading(try FileReading(input: input, partition: partition, adopted: stored.byPartition[partition],
                                         bytesBefore: bytesBefore, run: run, logger: logger))
    }

    /// The input's last message is committed: its summary goes out, the next input follows.
    package func release(_ partitions: [Int32]) throws {
        guard case .finishing(let reading) = phase, let run else { preconditionFailure("no input is finishing") }
        reading.recordFacts()
        finishedTotals.messages += reading.totals.messages
        finishedTotals.skippedBeforeResume += reading.totals.skippedBeforeResume
        finishedTotals.heldBackBytes += reading.totals.heldBackBytes
        bytesBefore += reading.bytesRead
        finished?(reading.input.file.path, reading.summary(stopped: run.isStopping))
        index += 1
        phase = .resolving
    }

    /// A stop came in the middle of an input: what it learnt of the file is still recorded.
    package func finish(committed: Bool) {
        // What is known of the input holds only for what was committed of it.
        guard committed else { return }
        switch phase {
        case .reading(let reading), .finishing(let reading): reading.recordFacts()
        case .resolving, .assigning: break
        }
    }

    private func resolve(_ file: FileSource, _ run: SourceRun) throws -> ResolvedFile {
        try run.control.run { try resolver.resolve(file, on: $0) }
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
