import Foundation
import AuditRead
import Hummingbird
import Logging
import Postgres
import Synchronization

/// Who may use the admin API, checked before any route runs:
///
/// 1. The Host header must name the bound address or a configured name (`allowedHosts`), so a
///    web page cannot reach a loopback-bound server by rebinding its own DNS name to 127.0.0.1.
///    A server bound to every address (0.0.0.0, ::) also accepts any IP literal; `localhost`
///    is accepted when bound to loopback.
/// 2. Every path except `publicPaths` (`/metrics`, the probes `/livez` and `/readyz`, and the
///    API's own description `/openapi.json`) needs
///    `Authorization: Bearer <token>`, compared in constant time. Without a configured token
///    they all answer 401: operators set ADMIN_TOKEN or use the CLI. The tenant read API
///    (`/v1/tenants/...`) also takes tenant tokens and authenticates itself (`TenantReadAPI`).
struct AdminAccess<Context: RequestContext>: RouterMiddleware {
    static var publicPaths: Set<String> { ["/metrics", "/livez", "/readyz", StaticDocuments.openAPIPath] }

    let token: [UInt8]?
    let boundHost: String
    let allowedHosts: Set<String>
    /// One warning per 10 s about refused hosts, with how many were not logged since.
    let refusedHostWarnings = OccasionalWarning(interval: .seconds(10))

    init(token: String?, boundHost: String, allowedHosts: [String]) {
        self.token = token.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        self.boundHost = Self.normalized(boundHost)
        self.allowedHosts = Set(allowedHosts.map(Self.normalized))
    }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = request.head.authority ?? ""
        guard isAllowed(host: host) else {
            if let unlogged = refusedHostWarnings.due() {
                // Quoted and escaped: a client's Host header cannot add fields or controls to the log.
                context.logger.warning("refused a request for a host this server does not serve",
                                       metadata: [LogKey.host: "\(Self.quotedForLog(host))", LogKey.refusalsNotLogged: "\(unlogged)"])
            }
            return try AdminServer.error(
                "Host \(host.isEmpty ? "(none)" : host) is not served here: use \(boundHost) or a name given with --admin-allowed-host",
                status: .forbidden)
        }
        if Self.publicPaths.contains(request.uri.path) { return try await next(request, context) }
        // The tenant read API takes tenant tokens as well as this one and checks them itself.
        if request.uri.path.hasPrefix(TenantReadAPI.pathPrefix) || request.uri.path == TenantReadAPI.checkpointPath
            || request.uri.path == TenantReadAPI.checkpointPath + "/consistency" {
            return try await next(request, context)
        }
        guard let token else {
            return try refusal("the admin API needs a token: start it with ADMIN_TOKEN (or ADMIN_TOKEN_FILE) set, or use the CLI")
        }
        let authorization: String? = request.headers[.authorization]
        let presented = authorization.flatMap { Self.bearerToken($0) }.map { Array($0) } ?? []
        guard ConstantTime.equals(presented, token) else {
            return try refusal("missing or wrong bearer token (Authorization: Bearer <ADMIN_TOKEN>)")
        }
        return try await next(request, context)
    }

    /// `text` in double quotes, its first 200 characters, controls and quotes escaped.
    static func quotedForLog(_ text: String) -> String {
        let cut = text.count > 200 ? String(text.prefix(200)) + "..." : text
        return "\"" + SafeText.terminal(cut).replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func refusal(_ message: String) throws -> Response {
        var response = try AdminServer.error(message, status: .unauthorized)
        response.headers[.wwwAuthenticate] = #"Bearer realm="audit-ingest admin""#
        return response
    }

    /// `host[:port]` (an IPv6 literal in brackets) against the bound address and the names.
    func isAllowed(host authority: String) -> Bool {
        let host = Self.normalized(Self.stripPort(authority))
        guard !host.isEmpty else { return false }
        if host == boundHost || allowedHosts.contains(host) { return true }
        let isLiteral = Self.isIPLiteral(host)
        if ["0.0.0.0", "::"].contains(boundHost) { return isLiteral }
        if ["127.0.0.1", "::1", "localhost"].contains(boundHost) { return ["127.0.0.1", "::1", "localhost"].contains(host) }
        return false
    }

    static func bearerToken(_ header: String) -> Substring.UTF8View? {
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else { return nil }
        return header.dropFirst(prefix.count).utf8
    }

    static func stripPort(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        if authority.filter({ $0 == ":" }).count == 1, let colon = authority.firstIndex(of: ":") {
            return String(authority[..<colon])
        }
        return authority
    }

    static func normalized(_ host: String) -> String {
        var host = host.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        return host
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// Comparison whose time does not depend on where the inputs differ (only on the expected
/// length), so a client cannot find the token byte by byte from response times.
enum ConstantTime {
    static func equals(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference = UInt8(presented.count == expected.count ? 0 : 1)
        for index in expected.indices {
            difference |= (index < presented.count ? presented[index] : 0) ^ expected[index]
        }
        return difference == 0
    }
}

/// Turns an unexpected error into a 500 whose body names no internals, after logging the cause
/// (PostgresError messages carry only masked connection strings). HTTP errors pass through.
struct AdminErrorLogging<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status == .internalServerError {
                context.logger.error("admin request failed", metadata: [LogKey.path: "\(request.uri.path)", LogKey.status: "500"])
            }
            return response
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.insufficientPrivilege {
            context.logger.warning("admin request refused by the database", metadata: [LogKey.path: "\(request.uri.path)", LogKey.error: "\(error)"])
            return try AdminServer.error("""
                the database refused this to the admin API's role (\(error.message)): serve it as the schema owner \
                (admin serve --database-role none with the owner's connection string), or use the CLI
                """, status: .forbidden)
        } catch {
            context.logger.error("admin request failed", metadata: [
                LogKey.path: "\(request.uri.path)", LogKey.method: "\(request.method)", LogKey.error: "\(error)",
            ])
            return try AdminServer.error("internal error (\(type(of: error))); the server log has the cause",
                                         status: .internalServerError)
        }
    }
}

/// A warning a client can provoke at will, logged at most once per `interval`.
final class OccasionalWarning: Sendable {
    private let interval: Duration
    private let state = Mutex<(last: ContinuousClock.Instant?, skipped: Int)>((nil, 0))

    init(interval: Duration) { self.interval = interval }

    /// nil while the last warning is recent (this one is counted); else how many were skipped.
    func due(now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            if let last = state.last, now - last < interval {
                state.skipped += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.skipped
        }
    }
}
