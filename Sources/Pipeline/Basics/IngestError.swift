/// Why the pipeline stopped (as opposed to a single event being rejected).
public struct IngestError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The schema is missing: run `audit-ingest migrate`.
        public static let schemaNotMigrated = Code("schemaNotMigrated")
        /// A source cannot be read (missing file, permission, decompression).
        public static let sourceUnreadable = Code("sourceUnreadable")
        /// The part of a source an earlier run stored has changed since (an edited or truncated file).
        public static let sourceChanged = Code("sourceChanged")
        /// The run was asked to stop and did not finish (SIGTERM): what it did not commit is read
        /// again on the next run.
        public static let interrupted = Code("interrupted")
        /// A flush statement hit the statement timeout again and again (`timeoutsBeforeStopping`):
        /// too slow a server or too large a batch for the limit. Nothing of the batch was stored.
        public static let databaseTimeout = Code("databaseTimeout")
        /// Another process committed a partition this one was writing (it no longer owns it).
        public static let partitionTakenOver = Code("partitionTakenOver")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
