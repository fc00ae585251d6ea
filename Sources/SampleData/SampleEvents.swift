import AuditCore
import Foundation

/// Deterministic, realistic audit events for the demo, tests and benchmarks: a mix of actions,
/// severities, IPv4/IPv6, user agents and small metadata objects, spread over tenants and months.
/// The same seed gives the same events.
///
/// No event lies in the future: every timestamp, with its UTC offset applied, is before the start
/// of the current UTC day (see `Options.latestDay`), so generated data passes the decoder's
/// plausibility window whatever the day of the month.
public struct SampleEvents: Sequence, IteratorProtocol {
    public struct Options: Sendable {
        public var count: Int
        public var tenants: Int
        /// Months back from `endMonth`, inclusive.
        public var months: Int
        /// The last month of events: by default the month of `latestDay`; a later month is
        /// clamped to it.
        public let endMonth: Month
        /// The latest local calendar day an event may have (days since 1970-01-01): two days
        /// before "now". Local times run up to 5 hours behind UTC (`-05:00`), so the latest
        /// instant generated is 05:00 UTC yesterday.
        public let latestDay: Int64
        /// Fraction (0–1) of lines that are broken in one of several ways.
        public var invalidRatio: Double
        public var seed: UInt64
        /// Seed of the tenant ids (default: `seed`): keep it fixed to vary events, not tenants.
        public var tenantSeed: UInt64

        /// `now` is the generator's clock (default: the system's); pass a fixed one for events
        /// that do not depend on the day they are generated.
        public init(count: Int, tenants: Int = 8, months: Int = 3, endMonth: Month? = nil,
                    invalidRatio: Double = 0, seed: UInt64 = 42, tenantSeed: UInt64? = nil, now: Date = Date()) {
            self.tenantSeed = tenantSeed ?? seed
            self.count = count
            self.tenants = Swift.max(1, tenants)
            self.months = Swift.max(1, months)
            latestDay = Int64((now.timeIntervalSince1970 / 86_400).rounded(.down)) - 2
            let latestMonth = Month(unixDay: Int32(latestDay))
            self.endMonth = Swift.min(endMonth ?? latestMonth, latestMonth)
            self.invalidRatio = invalidRatio
            self.seed = seed
        }
    }

    public struct Event: Sendable {
        public var id: String
        public var tenantID: String
        public var userID: String?
        public var action: String
        public var resourceType: String
        public var resourceID: String
        public var severity: String
        public var timestamp: String
        public var ipAddress: String
        public var userAgent: String
        public var metadata: String
        /// Set for a deliberately broken line: its text replaces the JSON.
        public var brokenLine: String?
    }

    public let options: Options
    private var random: SplitMix64
    private var produced = 0
    private let tenants: [String]

    public init(_ options: Options) {
        self.options = options
        random = SplitMix64(seed: options.seed)
        tenants = Self.tenantIDs(count: options.tenants, seed: options.tenantSeed)
    }

    /// The tenant ids the events use (deterministic from the seed).
    public static func tenantIDs(count: Int, seed: UInt64 = 42) -> [String] {
        var random = SplitMix64(seed: seed ^ 0x7465_6E61_6E74)
        return (0..<count).map { _ in uuid(&random) }
    }

    public mutating func next() -> Event? {
        guard produced < options.count else { return nil }
        produced += 1
        // Skewed: a few large tenants and a long tail.
        let tenantIndex = Swift.min(Int(Double(options.tenants) * pow(random.unit(), 2)), options.tenants - 1)
        let monthOffset = Int(random.next() % UInt64(options.months))
        var month = options.endMonth
        for _ in 0..<monthOffset { month = month.previous }
        // Days 1-28 of every month but the latest, which ends at `latestDay`.
        let days = Swift.min(28, options.latestDay - month.firstUnixDay + 1)
        let day = 1 + Int(random.next() % UInt64(days))
        let seconds = Int(random.next() % 86_400)
        let micros = Int(random.next() % 1_000_000)
        let offsetMinutes = [0, 0, 0, 60, -300, 330][Int(random.next() % 6)]
        let timestamp = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d%@", month.year, month.month, day,
                               seconds / 3600, seconds / 60 % 60, seconds % 60, micros,
                               offsetMinutes == 0 ? "Z" : String(format: "%@%02d:%02d", offsetMinutes < 0 ? "-" : "+",
                                                                  abs(offsetMinutes) / 60, abs(offsetMinutes) % 60))
        let action = Self.actions[Int(random.next() % UInt64(Self.actions.count))]
        let severityRoll = random.next() % 100
        let severity = severityRoll < 5 ? "DEBUG" : severityRoll < 80 ? "INFO" : severityRoll < 93 ? "WARNING"
            : severityRoll < 99 ? "ERROR" : "CRITICAL"
        let ip = random.next() % 4 == 0
            ? String(format: "2001:db8:%x::%x", random.next() % 0xFFFF, random.next() % 0xFFFF)
            : "\(10 + random.next() % 200).\(random.next() % 256).\(random.next() % 256).\(1 + random.next() % 254)"
        var event = Event(
            id: Self.uuid(&random), tenantID: tenants[tenantIndex],
            userID: random.next() % 10 == 0 ? nil : Self.uuid(&random),
            action: action, resourceType: Self.resourceTypes[Int(random.next() % UInt64(Self.resourceTypes.count))],
            resourceID: "res-\(random.next() % 1_000_000)", severity: severity, timestamp: timestamp, ipAddress: ip,
            userAgent: Self.userAgents[Int(random.next() % UInt64(Self.userAgents.count))],
            metadata: #"{"request_id":"\#(String(random.next(), radix: 16))","region":"\#(Self.regions[Int(random.next() % 4)])","latency_ms":\#(random.next() % 900),"tags":["audit","\#(action.split(separator: ".").first ?? "x")"]}"#)
        if options.invalidRatio > 0, random.unit() < options.invalidRatio {
            event.brokenLine = brokenLine(for: event)
        }
        return event
    }

    private mutating func brokenLine(for event: Event) -> String {
        let json = Self.json(event)
        switch random.next() % 6 {
        case 0: return String(json.dropLast(5))  // truncated JSON
        case 1: return json.replacingOccurrences(of: event.tenantID, with: "not-a-uuid")
        case 2: return json.replacingOccurrences(of: event.timestamp, with: "1970-01-01T00:00:00Z")
        case 3: return json.replacingOccurrences(of: "\"\(event.severity)\"", with: "\"LOUD\"")
        case 4: return json.replacingOccurrences(of: "\"action\":\"", with: "\"action\":\"nul\\u0000")
        default: return json.replacingOccurrences(of: event.ipAddress, with: "999.1.1.1")
        }
    }

    /// The event as one NDJSON line (without the newline), or its broken form.
    public static func ndjson(_ event: Event) -> String { event.brokenLine ?? json(event) }

    static func json(_ event: Event) -> String {
        let user = event.userID.map { "\"\($0)\"" } ?? "null"
        return #"{"id":"\#(event.id)","tenant_id":"\#(event.tenantID)","user_id":\#(user),"action":"\#(event.action)","resource_type":"\#(event.resourceType)","resource_id":"\#(event.resourceID)","severity":"\#(event.severity)","timestamp":"\#(event.timestamp)","ip_address":"\#(event.ipAddress)","user_agent":"\#(event.userAgent)","metadata":\#(event.metadata)}"#
    }

    /// The same event as a CSV line for `COPY audit_log FROM ... (FORMAT csv)` with the eleven
    /// columns in table order. Broken events have no CSV form (nil).
    public static func csv(_ event: Event) -> String? {
        guard event.brokenLine == nil else { return nil }
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return [event.id, event.tenantID, event.userID ?? "", event.action, event.resourceType, event.resourceID,
                event.severity, event.timestamp, event.ipAddress, quoted(event.userAgent), quoted(event.metadata)]
            .joined(separator: ",")
    }

    static let actions = ["user.login", "user.logout", "user.password_change", "item.create", "item.update",
                          "item.delete", "item.share", "tenant.settings_update", "api_key.create", "api_key.revoke",
                          "export.download", "role.grant", "role.revoke", "session.expire", "billing.invoice_view"]
    static let resourceTypes = ["session", "item", "user", "tenant", "api_key", "export", "invoice", "role"]
    static let regions = ["eu-west-1", "us-east-1", "ap-south-1", "sa-east-1"]
    static let userAgents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "curl/8.5.0", "python-requests/2.32.3", "okhttp/4.12.0", "Go-http-client/2.0",
    ]

    static func uuid(_ random: inout SplitMix64) -> String {
        let high = random.next() & 0xFFFF_FFFF_FFFF_0FFF | 0x4000
        let low = random.next() & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        return UUIDValue(high: high, low: low).description
    }
}

/// A small, fast, seedable generator (Steele, Lea, Flood: SplitMix64): the same seed gives the
/// same numbers, so generated data and a test's random choices can be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
