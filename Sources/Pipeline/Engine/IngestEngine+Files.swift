extension IngestEngine {
    /// Runs `files` (NDJSON or JSON documents, `.gz`, standard input) through one engine start,
    /// each resuming where an earlier run on the same source stopped (see `FileSource` for what
    /// "the same" means). `finished` gets each file's summary once it is committed; `progress`
    /// is called from the reading thread about twice a second.
    ///
    /// - Parameter ifChanged: what to do when the part an earlier run stored has changed since.
    /// - Parameter stop: raised (SIGTERM) to stop reading: what was read is committed within
    ///   `stopTimeout`, then it throws `interrupted`; a later run continues.
    package func ingest(_ files: [FileSource], ifChanged: ChangedSourcePolicy = .refuse, stop: StopSignal = StopSignal(),
                       stopTimeout: Duration = .seconds(10), finished: ((String, IngestSummary) -> Void)? = nil,
                       progress: ((IngestStatistics.Snapshot) -> Void)? = nil) throws -> IngestSummary {
        let source = FileIngestSource(files, ifChanged: ifChanged, logger: logger, finished: finished)
        let summary = try run(source, stop: stop, stopTimeout: stopTimeout, progress: progress)
        guard !summary.stopped else {
            throw IngestError(.interrupted, "stopped by a signal after committing what it had read; run the same command again to continue")
        }
        return summary
    }

    /// `ingest([file])`, with errors naming the file.
    package func ingest(_ file: FileSource, ifChanged: ChangedSourcePolicy = .refuse, stop: StopSignal = StopSignal(),
                       stopTimeout: Duration = .seconds(10),
                       progress: ((IngestStatistics.Snapshot) -> Void)? = nil) throws -> IngestSummary {
        do {
            return try ingest([file], ifChanged: ifChanged, stop: stop, stopTimeout: stopTimeout, progress: progress)
        } catch let error as IngestError where error.code == .interrupted {
            throw IngestError(.interrupted, "\(file.path): \(error.message)")
        }
    }
}
