/// Why an operations command refused or failed, in words an operator can act on.
public struct OperationsError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The tables operations may touch: the schema's own (partitions are found from these).
public enum ManagedTables {
    public static let all = ["tenant", "user", "item", "audit_log", "tenant_metrics", "tenant_metrics_delta", "audit_dead_letter",
                             "ingest_offsets", "schema_migrations"]
    public static let partitioned = ["audit_log", "tenant_metrics"]
}
