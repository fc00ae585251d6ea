/// Why the pipeline stopped (as opposed to a single event being rejected).
package struct IngestError: Error, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The schema is missing: run `audit-ingest migrate`.
        package static let schemaNotMigrated = Code("schemaNotMigrated")
        /// A source cannot be read (missing file, permission, decompression).
        package static let sourceUnreadable = Code("sourceUnreadable")
        /// The part of a source an earlier run stored has changed since (an edited or truncated file).
        package static let sourceChanged = Code("sourceChanged")
        /// The run was asked to stop and did not finish (SIGTERM): what it did not commit is read
        /// again on the next run.
        package static let interrupted = Code("interrupted")
        /// A flush statement hit the statement timeout again and again (`timeoutsBeforeStopping`):
        /// too slow a server or too large a batch for the limit. Nothing of the batch was stored.
        package static let databaseTimeout = Code("databaseTimeout")
        /// Another process committed a partition this one was writing (it no longer owns it).
        package static let partitionTakenOver = Code("partitionTakenOver")
    }

    package let code: Code
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }
}
