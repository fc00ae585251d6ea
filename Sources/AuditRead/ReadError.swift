/// Why a read request gets no events. `parameter` names the request parameter at fault, so an
/// API client (HTTP 400) or an operator (CLI usage error) knows what to fix.
public struct ReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A malformed or out-of-range parameter, a tampered or foreign cursor (HTTP 400).
        case badParameter
        /// No token, or one that is unknown or revoked (HTTP 401).
        case notAuthenticated
        /// A tenant token used on another tenant's path (HTTP 403).
        case forbidden
        /// No such tenant (HTTP 404).
        case unknownTenant
        /// The tenant is suspended or inactive: its tokens read nothing and none are issued (HTTP 403).
        case tenantNotActive
        /// No such event, or nothing to prove it with yet (HTTP 404).
        case notFound
        /// Too many exports at once, for this tenant or in all (HTTP 429 or 503, with Retry-After).
        case busy
        /// This server does not serve the request at all as configured (HTTP 503, no Retry-After).
        case unavailable
        /// It would clash with what exists: a name taken, a limit reached (HTTP 409).
        case conflict
    }

    public var kind: Kind
    public var parameter: String?
    public var message: String

    public init(kind: Kind, parameter: String? = nil, message: String) {
        self.kind = kind
        self.parameter = parameter
        self.message = message
    }

    static func badParameter(_ name: String, _ message: String) -> ReadError {
        ReadError(kind: .badParameter, parameter: name, message: "\(name): \(message)")
    }

    public var description: String { message }
}
