import Postgres

extension IngestEngine {
    /// Ingests a whole NDJSON input, resuming where an earlier run on the same source stopped
    /// (see `FileSource` for what "the same" means). `progress` is called from the reading thread
    /// about twice a second.
    ///
    /// - Parameter ifChanged: what to do when the part an earlier run stored has changed since.
    /// - Parameter stop: raised (SIGTERM) to stop reading: what was read is committed within
    ///   `stopTimeout`, then it throws `interrupted`; a later run continues.
    public func ingest(_ file: FileSource, ifChanged: ChangedSourcePolicy = .refuse, stop: StopSignal = StopSignal(),
                       stopTimeout: Duration = .seconds(10),
                       progress: ((IngestStatistics.Snapshot) -> Void)? = nil) throws -> IngestSummary {
        var source: String?  // nil: the one the file continues
        var snapshotStart: FileSource.ResumePoint?
        while true {
            let summary: IngestSummary
            do {
                summary = try run(FileIngestSource(file, continuing: source, snapshotStart: snapshotStart, logger: logger),
                                  stop: stop, stopTimeout: stopTimeout, progress: progress)
            } catch let changed as FileIngestSource.Changed {
                switch changed.verdict {
                case .snapshot(let start):
                    logger.notice("an older snapshot of a stored source: reading it from its last checkpoint, skipping what is stored",
                                  metadata: ["file": "\(file.path)", "source": "\(changed.source)", "byte": "\(start.offset)"])
                    (source, snapshotStart) = (changed.source, start)
                case .anotherFile:
                    source = try newGeneration(of: file, after: changed.source,
                                               because: "another file with the same first line as source \(changed.source)")
                    snapshotStart = nil
                case .edited:
                    source = try sourceAfterChange(changed.change, of: file, was: changed.source, ifChanged: ifChanged)
                    snapshotStart = nil
                }
                continue
            } catch let error as IngestError where error.code == .interrupted {
                throw IngestError(.interrupted, "\(file.path): \(error.message)")
            }
            guard !summary.stopped else {
                throw IngestError(.interrupted,
                                  "\(file.path): stopped by a signal after committing what it had read; run the same command again to continue")
            }
            return summary
        }
    }

    /// The source to ingest a changed file as (`--if-changed new-source`), or the error that explains.
    private func sourceAfterChange(_ changed: FileSource.PrefixChanged, of file: FileSource, was source: String,
                                   ifChanged: ChangedSourcePolicy) throws -> String {
        let what = changed.truncated
            ? "it is now shorter than the \(changed.offset) bytes an earlier run stored"
            : "its first \(changed.offset) bytes differ from the ones an earlier run stored"
        if case .standardInput(let name) = file.identity {
            throw IngestError(.sourceChanged, """
                standard input (--source-name \(name.dropFirst("name:".count))) is not the stream an earlier run \
                of that name read: \(what). Give this stream another --source-name.
                """)
        }
        guard ifChanged == .newSource else {
            throw IngestError(.sourceChanged, """
                \(file.path) continues source \(source) (same first line), but \(what): it was edited or \
                truncated. Restore it, or run backfill with --if-changed new-source to ingest it as a new \
                source (events already stored are then dead-lettered as duplicates).
                """)
        }
        return try newGeneration(of: file, after: source, because: "the file changed")
    }

    /// A new generation of the file's source name (`file:<head>~N`), logged with why.
    private func newGeneration(of file: FileSource, after source: String, because reason: String) throws -> String {
        let control = try PostgresConnection(configuration: database)
        defer { control.close() }
        let next = try OffsetStore(source: source).nextGeneration(of: file.baseName, on: control)
        logger.notice("\(reason): ingesting it as a new source", metadata: ["file": "\(file.path)", "source": "\(next)"])
        return next
    }
}

/// What backfill does with a file whose stored part has changed since an earlier run.
public enum ChangedSourcePolicy: String, Sendable, CaseIterable {
    /// Stop with an error naming the file (the default).
    case refuse
    /// Ingest it from the start as a new source (`file:<head>~N`).
    case newSource = "new-source"
}
