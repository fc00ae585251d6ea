/// Limits the decoder enforces.
public struct DecoderConfiguration: Sendable {
    /// Earliest accepted timestamp, microseconds since the Unix epoch. Default: 2000-01-01 00:00 UTC.
    public var earliestTimestamp: Int64
    /// How far past the current time a timestamp may be. Default: 24 h.
    public var maximumFutureSkew: Duration
    /// Largest accepted message, in bytes. Default: 1 MiB.
    public var maxEventBytes: Int
    /// Largest accepted metadata object, in bytes of JSON text. Default: 64 KiB.
    public var maxMetadataBytes: Int
    /// Deepest accepted nesting of metadata. Default: 64.
    public var maxMetadataDepth: Int
    /// Fixes "now" (microseconds since the Unix epoch) for tests; nil uses the clock.
    public var fixedNow: Int64?
    /// Events stamped before this (microseconds since the Unix epoch) are past the retention
    /// period: rejected as `older than retention`, so they never recreate a pruned month.
    /// Default: nil (no retention).
    public var retentionCutoff: Int64?

    public init(earliestTimestamp: Int64 = 946_684_800_000_000, maximumFutureSkew: Duration = .seconds(86_400),
                maxEventBytes: Int = 1 << 20, maxMetadataBytes: Int = 64 << 10, maxMetadataDepth: Int = 64,
                fixedNow: Int64? = nil, retentionCutoff: Int64? = nil) {
        self.earliestTimestamp = earliestTimestamp
        self.maximumFutureSkew = maximumFutureSkew
        self.maxEventBytes = maxEventBytes
        self.maxMetadataBytes = maxMetadataBytes
        self.maxMetadataDepth = maxMetadataDepth
        self.fixedNow = fixedNow
        self.retentionCutoff = retentionCutoff
    }

    /// Field length limits in characters (docs/design.md, "The event on the wire").
    static let actionLimit = 100
    static let resourceTypeLimit = 100
    static let resourceIDLimit = 255
    static let userAgentLimit = 1024
}
