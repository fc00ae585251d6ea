import AuditCore
import Foundation

/// The filters of a search or an export, parsed from request parameters (HTTP query or CLI flags
/// under the same names) with a `ReadError.badParameter` naming the first bad one.
public struct EventFilter: Sendable, Equatable {
    /// The severities in rising order; `severity=WARNING` means WARNING, ERROR and CRITICAL.
    public static let severities = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    /// The parameter names this filter reads.
    public static let parameterNames: Set<String> = [
        "since", "until", "action", "user_id", "resource_type", "resource_id", "severity", "metadata",
    ]

    /// RFC 3339 texts, already validated; `since` inclusive, `until` exclusive.
    public var since: String?
    public var until: String?
    public var action: String?
    public var userID: String?
    public var resourceType: String?
    public var resourceID: String?
    /// The minimum level, upper-case.
    public var minimumSeverity: String?
    /// A JSON object: events whose metadata contains it (`@>`, the GIN index).
    public var metadata: String?

    public init() {}

    public init(parameters: [String: String]) throws(ReadError) {
        for name in ["since", "until"] {
            if let text = parameters[name], !Self.isStorableTime(text) {
                let shown = text.count > 64 ? String(text.prefix(64)) + "..." : text
                throw .badParameter(name, "\(shown) is not an RFC 3339 date-time with an offset from year 0001 on, with at most 9 "
                                    + "fraction digits (like 2026-03-01T00:00:00Z)")
            }
        }
        since = parameters["since"]
        until = parameters["until"]
        if let userID = parameters["user_id"] {
            guard UUIDValue(userID) != nil else { throw .badParameter("user_id", "\(userID) is not a UUID") }
            self.userID = userID.lowercased()
        }
        if let severity = parameters["severity"] {
            guard Self.severities.contains(severity.uppercased()) else {
                throw .badParameter("severity", "unknown severity \(severity) (one of \(Self.severities.joined(separator: ", ")))")
            }
            minimumSeverity = severity.uppercased()
        }
        if let metadata = parameters["metadata"] {
            let parsed = try? JSONSerialization.jsonObject(with: Data(metadata.utf8), options: [.fragmentsAllowed])
            guard parsed is [String: Any] else { throw .badParameter("metadata", "must be a JSON object, like {\"region\":\"eu\"}") }
            guard !metadata.contains("\\u0000"), !metadata.utf8.contains(0) else {
                throw .badParameter("metadata", "must not contain NUL (\\u0000)")
            }
            self.metadata = metadata
        }
        for (name, text) in [("action", parameters["action"]), ("resource_type", parameters["resource_type"]),
                             ("resource_id", parameters["resource_id"])] {
            if let text, text.utf8.contains(0) { throw .badParameter(name, "must not contain NUL") }
        }
        action = parameters["action"]
        resourceType = parameters["resource_type"]
        resourceID = parameters["resource_id"]
    }

    /// An RFC 3339 time PostgreSQL's `timestamptz` also reads: there is no year 0 there, no offset
    /// beyond ±15:59, and a field longer than its input buffer (a fraction of thousands of digits)
    /// is refused.
    static func isStorableTime(_ text: String) -> Bool {
        guard text.utf8.count <= 40, RFC3339.unixMicroseconds(text) != nil, !text.hasPrefix("0000") else { return false }
        // RFC 3339 allows offsets to ±23:59; PostgreSQL's timestamptz input only to ±15:59.
        let offset = text.utf8.suffix(6)
        if let sign = offset.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"),
           let hours = Int(String(decoding: offset.dropFirst().prefix(2), as: UTF8.self)), hours > 15 {
            return false
        }
        let fraction = text.drop { $0 != "." }.dropFirst().prefix { $0.isNumber }
        return fraction.count <= 9
    }

    /// Adds this filter's conditions on `audit_log` to `conditions`.
    func apply(to conditions: inout SQLConditions) {
        if let since { conditions.add(#""timestamp" >= "# + conditions.bind(since, as: "timestamptz")) }
        if let until { conditions.add(#""timestamp" < "# + conditions.bind(until, as: "timestamptz")) }
        if let action { conditions.add("action = " + conditions.bind(action, as: "text")) }
        if let userID { conditions.add("user_id = " + conditions.bind(userID, as: "uuid")) }
        if let resourceType { conditions.add("resource_type = " + conditions.bind(resourceType, as: "text")) }
        if let resourceID { conditions.add("resource_id = " + conditions.bind(resourceID, as: "text")) }
        if let minimumSeverity, let index = Self.severities.firstIndex(of: minimumSeverity), index > 0 {
            let levels = "{" + Self.severities[index...].joined(separator: ",") + "}"
            conditions.add("severity = ANY (" + conditions.bind(levels, as: "text[]") + ")")
        }
        if let metadata { conditions.add("custom_metadata @> " + conditions.bind(metadata, as: "jsonb")) }
    }
}

/// Parses `limit`: default `default`, 1 to `maximum`.
func parseLimit(_ text: String?, name: String = "limit", default defaultValue: Int = 100, maximum: Int = 1000) throws(ReadError) -> Int {
    guard let text else { return defaultValue }
    guard let limit = Int(text), (1...maximum).contains(limit) else {
        throw .badParameter(name, "must be a whole number from 1 to \(maximum), not \(text)")
    }
    return limit
}
