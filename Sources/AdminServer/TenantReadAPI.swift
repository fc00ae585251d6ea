import AuditRead
import Foundation
import Hummingbird
import Logging
import Postgres
import Synchronization

/// The tenant read API (`/v1/tenants/{tenant_id}/...`): search, export and the feed.
///
/// Authentication is its own (`AdminAccess` still checks the Host header): the admin token reads
/// any tenant; a tenant token (`tenant token create`) reads only its tenant (403 elsewhere). Every
/// request then runs as `audit_reader` with that tenant set for its transaction only
/// (`ReaderSession`), so row-level security keeps tenants apart.
final class TenantReadAPI: Sendable {
    static let pathPrefix = "/v1/tenants/"

    private let adminToken: [UInt8]?
    private let pool: ConnectionPool
    private let logger: Logger
    /// Loaded from the database at first use; the key does not change.
    private let signer = Mutex<CursorSigner?>(nil)

    init(adminToken: String?, pool: ConnectionPool, logger: Logger) {
        self.adminToken = adminToken.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        self.pool = pool
        self.logger = logger
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/tenants/:tenant_id/events") { request, context in
            try await self.answer(request, context, allowed: EventSearch.parameterNames) { tenant, parameters, connection, signer in
                let search = try EventSearch(tenantID: tenant, parameters: parameters, signer: signer)
                let page = try ReaderSession.run(tenantID: tenant, on: connection) { try search.page(on: $0, signer: signer) }
                return Self.listing(page.events, nextCursor: page.nextCursor)
            }
        }
        router.get("/v1/tenants/:tenant_id/feed") { request, context in
            try await self.answer(request, context, allowed: EventFeed.parameterNames) { tenant, parameters, connection, signer in
                let feed = try EventFeed(tenantID: tenant, parameters: parameters, signer: signer)
                let page = try ReaderSession.run(tenantID: tenant, on: connection) { try feed.page(on: $0, signer: signer) }
                return Self.listing(page.events, nextCursor: page.nextCursor)
            }
        }
        router.get("/v1/tenants/:tenant_id/events/export") { request, context in
            try await self.export(request, context)
        }
    }

    // MARK: Requests

    private typealias Work = @Sendable (String, [String: String], PostgresConnection, CursorSigner) throws -> String

    /// Authenticates, reads the parameters and runs `work` on a pooled connection (a Dispatch
    /// thread); `work` returns the JSON body. ReadErrors become 400/401/403/404.
    private func answer(_ request: Request, _ context: BasicRequestContext, allowed: Set<String>,
                        _ work: @escaping Work) async throws -> Response {
        let token = Self.bearer(request)
        let pathTenant = context.parameters.get("tenant_id") ?? ""
        let query = Array(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        do {
            let body = try await runBlocking {
                try self.pool.withConnection { connection in
                    let tenant = try self.authorize(token: token, pathTenant: pathTenant, on: connection)
                    let parameters = try Self.parameters(query, allowed: allowed)
                    return try work(tenant, parameters, connection, try self.signer(on: connection))
                }
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        } catch let error as ReadError {
            return try Self.response(for: error)
        }
    }

    private func export(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let token = Self.bearer(request)
        let pathTenant = context.parameters.get("tenant_id") ?? ""
        let query = Array(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let export: EventExport
        do {
            export = try await runBlocking {
                try self.pool.withConnection { connection in
                    let tenant = try self.authorize(token: token, pathTenant: pathTenant, on: connection)
                    let export = try EventExport(tenantID: tenant, parameters: try Self.parameters(query, allowed: EventExport.parameterNames))
                    try ReaderSession.run(tenantID: tenant, on: connection) { _ in }  // 404 before the 200 is sent
                    return export
                }
            }
        } catch let error as ReadError {
            return try Self.response(for: error)
        }
        let filename = "audit-events-\(export.tenantID).\(export.format.rawValue)"
        return Response(status: .ok, headers: [.contentType: export.format.contentType,
                                               .contentDisposition: "attachment; filename=\"\(filename)\""],
                        body: ResponseBody { writer in try await self.stream(export, to: &writer) })
    }

    /// Runs the COPY on a Dispatch thread and writes its chunks as they come (chunked encoding).
    /// An error after the first byte aborts the connection, so a client never takes a cut-off
    /// export for a complete one.
    private func stream(_ export: EventExport, to writer: inout any ResponseBodyWriter) async throws {
        let channel = ExportChannel()
        DispatchQueue.global().async {
            do {
                try self.pool.withConnection { connection in
                    try ReaderSession.run(tenantID: export.tenantID, on: connection, statementTimeout: .zero) {
                        try export.run(on: $0) { try channel.send($0) }
                    }
                }
                channel.finish(nil)
            } catch {
                if !(error is ExportChannel.Cancelled) {
                    self.logger.error("export failed", metadata: ["tenant": "\(export.tenantID)", "error": "\(error)"])
                }
                channel.finish(error)
            }
        }
        do {
            while let chunk = try await runBlocking({ try channel.receive() }) {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        } catch {
            channel.cancel()
            throw error
        }
    }

    // MARK: Authentication and parameters

    /// The tenant this request reads: 401 without a valid token, 400 for a malformed tenant id,
    /// 403 for a tenant token on another tenant's path.
    private func authorize(token: String?, pathTenant: String, on connection: PostgresConnection) throws -> String {
        guard let token, !token.isEmpty else {
            throw ReadError(kind: .notAuthenticated, message: "missing bearer token (Authorization: Bearer <tenant token or ADMIN_TOKEN>)")
        }
        if let adminToken, ConstantTime.equals(Array(token.utf8), adminToken) {
            return try ReaderSession.validTenantID(pathTenant)
        }
        guard let tokenTenant = try TenantTokens.tenant(ofToken: token, on: connection) else {
            throw ReadError(kind: .notAuthenticated, message: "unknown or revoked token")
        }
        let tenant = try ReaderSession.validTenantID(pathTenant)
        guard tokenTenant == tenant else {
            throw ReadError(kind: .forbidden, message: "this token reads tenant \(tokenTenant) only")
        }
        return tenant
    }

    private func signer(on connection: PostgresConnection) throws -> CursorSigner {
        if let loaded = signer.withLock({ $0 }) { return loaded }
        let loaded = try CursorSigner.load(on: connection)
        signer.withLock { $0 = loaded }
        return loaded
    }

    static func bearer(_ request: Request) -> String? {
        let header: String? = request.headers[.authorization]
        return header.flatMap { AdminAccess<BasicRequestContext>.bearerToken($0) }.map { String(Substring($0)) }
    }

    /// The query as a dictionary: unknown and repeated names are refused (a typo must not
    /// silently widen a search).
    static func parameters(_ query: [(String, String)], allowed: Set<String>) throws(ReadError) -> [String: String] {
        var parameters: [String: String] = [:]
        for (name, value) in query {
            guard allowed.contains(name) else {
                throw ReadError(kind: .badParameter, parameter: name,
                                message: "\(name): unknown parameter (known: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard parameters.updateValue(value, forKey: name) == nil else {
                throw ReadError(kind: .badParameter, parameter: name, message: "\(name): given more than once")
            }
        }
        return parameters
    }

    static func listing(_ events: [String], nextCursor: String?) -> String {
        // Cursors are base64url and '.', safe inside a JSON string as they are.
        "{\"events\":[" + events.joined(separator: ",") + "],\"next_cursor\":" + (nextCursor.map { "\"\($0)\"" } ?? "null") + "}"
    }

    static func response(for error: ReadError) throws -> Response {
        var body = ["error": error.message]
        if let parameter = error.parameter { body["parameter"] = parameter }
        let status: HTTPResponse.Status = switch error.kind {
        case .badParameter: .badRequest
        case .notAuthenticated: .unauthorized
        case .forbidden: .forbidden
        case .unknownTenant: .notFound
        }
        var response = try AdminServer.json(body, status: status)
        if error.kind == .notAuthenticated { response.headers[.wwwAuthenticate] = #"Bearer realm="audit-ingest""# }
        return response
    }
}
