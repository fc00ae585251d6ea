/// Why an event was not stored. `reason` is short and stable (for grouping and metrics);
/// `detail` says what exactly was wrong.
public struct Rejection: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Kind: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        public static let invalidJSON = Kind(rawValue: "invalid JSON")
        public static let invalidUTF8 = Kind(rawValue: "invalid UTF-8")
        public static let notAnObject = Kind(rawValue: "not an object")
        public static let emptyMessage = Kind(rawValue: "empty message")
        public static let tooLarge = Kind(rawValue: "event too large")
        public static let missingField = Kind(rawValue: "missing field")
        public static let wrongType = Kind(rawValue: "wrong type")
        public static let invalidUUID = Kind(rawValue: "invalid uuid")
        public static let invalidTimestamp = Kind(rawValue: "invalid timestamp")
        public static let timestampWithoutOffset = Kind(rawValue: "timestamp without offset")
        public static let timestampOutOfRange = Kind(rawValue: "timestamp outside plausibility window")
        public static let unknownSeverity = Kind(rawValue: "unknown severity")
        public static let nulCharacter = Kind(rawValue: "NUL character")
        public static let invalidIPAddress = Kind(rawValue: "invalid ip_address")
        public static let metadataNotObject = Kind(rawValue: "metadata not an object")
        public static let tooLong = Kind(rawValue: "field too long")
        public static let emptyField = Kind(rawValue: "empty field")
        public static let unknownTenant = Kind(rawValue: "unknown tenant")
        /// A native event naming another tenant than its source is bound to (`--tenant-from`).
        public static let tenantMismatch = Kind(rawValue: "tenant mismatch")
        public static let nestingTooDeep = Kind(rawValue: "nesting too deep")
        /// Stamped before the retention cut-off: its month is (or will be) pruned.
        public static let olderThanRetention = Kind(rawValue: "older than retention")
        /// A contract field given twice: readers that take the first and ones that take the last
        /// would disagree about the event.
        public static let duplicateField = Kind(rawValue: "duplicate field")
        /// PostgreSQL refused the row even so (the SQLSTATE is kept beside it).
        public static let rejectedByDatabase = Kind(rawValue: "rejected by database")
    }

    public var kind: Kind
    /// The field concerned, when there is one.
    public var field: String?
    public var detail: String
    /// The event's tenant when its `tenant_id` parsed (set by `EventDecoder.decode`).
    public var tenantID: UUIDValue?

    public init(_ kind: Kind, field: String? = nil, _ detail: String, tenantID: UUIDValue? = nil) {
        self.kind = kind
        self.field = field
        self.detail = detail
        self.tenantID = tenantID
    }

    /// `invalid uuid: tenant_id`: what goes to `audit_dead_letter.reason`.
    public var reason: String { field.map { "\(kind.rawValue): \($0)" } ?? kind.rawValue }

    public var description: String { "\(reason) (\(detail))" }
}
