import AuditRead
import Foundation
import Hummingbird
import NIOCore
import Logging
import Postgres
import Synchronization

/// The tenant read API (`/v1/tenants/{tenant_id}/...`): search, export and the feed.
///
/// Authentication is its own (`AdminAccess` still checks the Host header): the admin token reads
/// any tenant; a tenant token (`tenant token create`) reads only its tenant (403 elsewhere), and
/// only while that tenant is active (403 when suspended or inactive), and only over a login fit
/// for them (`ReadLogin`; 503 otherwise). Every request then runs
/// as `audit_reader` with that tenant set for its transaction only
/// (`ReaderSession`), so row-level security keeps tenants apart.
final class TenantReadAPI: Sendable {
    static let pathPrefix = "/v1/tenants/"
    /// The newest signed checkpoint, for any tenant token or the admin token.
    static let checkpointPath = "/v1/checkpoint"

    private let adminToken: [UInt8]?
    private let pool: ConnectionPool
    private let logger: Logger
    /// Loaded from the database at first use; the key does not change.
    private let signer = Mutex<CursorSigner?>(nil)

    /// Exports run on `exportPool`, as many as `admission` lets in; everything else on `pool`.
    private let exportPool: ConnectionPool
    private let admission: ExportAdmission
    /// Tenant tokens are served only when the pools' login is fit for them.
    let login: ReadLogin

    init(adminToken: String?, pool: ConnectionPool, exportPool: ConnectionPool, admission: ExportAdmission,
         login: ReadLogin, logger: Logger) {
        self.adminToken = adminToken.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        self.pool = pool
        self.exportPool = exportPool
        self.admission = admission
        self.login = login
        self.logger = logger
    }

    func register(on router: Router<AdminRequestContext>) {
        router.get("/v1/tenants/:tenant_id/events") { request, context in
            try await self.answer(request, context, allowed: EventSearch.parameterNames) { reader, parameters, connection, signer in
                let search = try EventSearch(tenantID: reader.tenant, parameters: parameters, signer: signer)
                let page = try reader.session(on: connection) { try search.page(on: $0, signer: signer) }
                return Self.listing(page.events, nextCursor: page.nextCursor)
            }
        }
        router.get("/v1/tenants/:tenant_id/feed") { request, context in
            try await self.answer(request, context, allowed: EventFeed.parameterNames) { reader, parameters, connection, signer in
                let feed = try EventFeed(tenantID: reader.tenant, parameters: parameters, signer: signer)
                let page = try reader.session(on: connection) { try feed.page(on: $0, signer: signer) }
                return Self.listing(page.events, nextCursor: page.nextCursor)
            }
        }
        router.get("/v1/tenants/:tenant_id/events/export") { request, context in
            try await self.export(request, context)
        }
        router.get("/v1/tenants/:tenant_id/rules") { request, context in
            try await self.answer(request, context, allowed: []) { reader, _, connection, _ in
                let rules = try reader.session(on: connection) { try TenantDataRules.read(tenant: reader.tenant, on: $0) }
                return String(decoding: try TenantReadAPI.encoder.encode(rules), as: UTF8.self)
            }
        }
        router.get("/v1/tenants/:tenant_id/events/:event_id/proof") { request, context in
            let eventID = context.parameters.get("event_id") ?? ""
            return try await self.answer(request, context, allowed: EventProofs.parameterNames) { reader, parameters, connection, _ in
                let proof = try EventProofs.proof(tenantID: reader.tenant, eventID: eventID, parameters: parameters,
                                                  activeOnly: reader.activeOnly, on: connection)
                return String(decoding: try proof.encoded(), as: UTF8.self)
            }
        }
        router.get(RouterPath(Self.checkpointPath)) { request, _ in
            try await self.checkpoint(request) { _, connection in try AdminServer.json(SignedCheckpoints.newest(on: connection)) }
        }
        router.get(RouterPath(Self.checkpointPath + "/consistency")) { request, _ in
            let query = Array(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
            return try await self.checkpoint(request) { _, connection in
                let proof = try SignedCheckpoints.consistency(
                    parameters: try Self.parameters(query, allowed: SignedCheckpoints.consistencyParameters), on: connection)
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: try proof.encoded())))
            }
        }
    }

    /// Bodies in the API's key order (sorted), with `/` as it is.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    // MARK: Requests

    /// Headers of a response carrying a tenant's events: never kept by a cache (a shared proxy,
    /// the browser's disk), never sniffed as another type than the one sent.
    static func tenantData(_ contentType: String) -> HTTPFields {
        [.contentType: contentType, .cacheControl: "no-store", .xContentTypeOptions: "nosniff"]
    }

    /// Who a request reads for: a tenant, with a tenant token (`activeOnly`) or the admin token.
    struct Reader: Sendable {
        var tenant: String
        /// A tenant token reads only while its tenant is active; the admin token reads any.
        var activeOnly: Bool

        func session<T>(on connection: PostgresConnection, statementTimeout: Duration? = nil,
                        _ body: (PostgresConnection) throws -> T) throws -> T {
            try ReaderSession.run(tenantID: tenant, on: connection, statementTimeout: statementTimeout, activeOnly: activeOnly, body)
        }
    }

    private typealias Work = @Sendable (Reader, [String: String], PostgresConnection, CursorSigner) throws -> String

    /// Authenticates, reads the parameters and runs `work` on a pooled connection (a Dispatch
    /// thread); `work` returns the JSON body. ReadErrors become 400/401/403/404.
    private func answer(_ request: Request, _ context: AdminRequestContext, allowed: Set<String>,
                        _ work: @escaping Work) async throws -> Response {
        let token = Self.bearer(request)
        let pathTenant = context.parameters.get("tenant_id") ?? ""
        let query = Array(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        do {
            let body = try await runBlocking {
                try self.pool.withConnection { connection in
                    let reader = try self.authorize(token: token, pathTenant: pathTenant, on: connection)
                    let parameters = try Self.parameters(query, allowed: allowed)
                    return try work(reader, parameters, connection, try self.signer(on: connection))
                }
            }
            return Response(status: .ok, headers: Self.tenantData("application/json"), body: .init(byteBuffer: ByteBuffer(string: body)))
        } catch let error as ReadError {
            return try Self.response(for: error)
        }
    }

    private func export(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let token = Self.bearer(request)
        let pathTenant = context.parameters.get("tenant_id") ?? ""
        let query = Array(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let export: EventExport
        let reader: Reader
        do {
            (export, reader) = try await runBlocking {
                try self.pool.withConnection { connection in
                    let reader = try self.authorize(token: token, pathTenant: pathTenant, on: connection)
                    let export = try EventExport(tenantID: reader.tenant, parameters: try Self.parameters(query, allowed: EventExport.parameterNames))
                    try reader.session(on: connection) { _ in }  // 404 or 403 before the 200 is sent
                    return (export, reader)
                }
            }
            try admission.admit(tenant: reader.tenant)
        } catch let error as ReadError {
            return try Self.response(for: error)
        }
        let filename = "audit-events-\(export.tenantID).\(export.format.rawValue)"
        var headers = Self.tenantData(export.format.contentType)
        headers[.contentDisposition] = "attachment; filename=\"\(filename)\""
        return Response(status: .ok, headers: headers,
                        body: ResponseBody { writer in try await self.stream(export, as: reader, over: context.channel, to: &writer) })
    }

    /// Runs the COPY on a Dispatch thread and writes its chunks as they come (chunked encoding),
    /// holding the admission turn taken by `export` until the COPY has ended. An error after the
    /// first byte aborts the connection, so a client never takes a cut-off export for a complete
    /// one. A client that takes no chunk for the stall timeout has its export aborted and its
    /// connection closed: the COPY's connection and turn are free again at once.
    private func stream(_ export: EventExport, as reader: Reader, over channel: any Channel,
                        to writer: inout any ResponseBodyWriter) async throws {
        let chunks = ExportChannel(stallTimeout: admission.limits.stallTimeout)
        DispatchQueue.global().async {
            defer { self.admission.release(tenant: reader.tenant) }
            do {
                try self.exportPool.withConnection { connection in
                    try reader.session(on: connection, statementTimeout: .zero) {
                        try export.run(on: $0) { try chunks.send($0) }
                    }
                }
                chunks.finish(nil)
            } catch {
                switch error {
                case is ExportChannel.Cancelled: break
                case is ExportChannel.Stalled:
                    self.logger.warning("export aborted: its client took nothing for the stall timeout",
                                        metadata: [LogKey.tenant: "\(export.tenantID)", LogKey.timeout: "\(self.admission.limits.stallTimeout)"])
                    channel.close(promise: nil)  // ends the write that waits on the socket
                default:
                    self.logger.error("export failed", metadata: [LogKey.tenant: "\(export.tenantID)", LogKey.error: "\(error)"])
                }
                chunks.finish(error)
            }
        }
        do {
            while let chunk = try await runBlocking({ try chunks.receive() }) {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        } catch {
            chunks.cancel()
            throw error
        }
    }

    /// The newest signed checkpoint and the keys the database says signed checkpoints. A
    /// tenant checks proofs against a key its operator gave it, not against these.
    private func checkpoint(_ request: Request,
                            _ work: @escaping @Sendable (Request, PostgresConnection) throws -> Response) async throws -> Response {
        let token = Self.bearer(request)
        do {
            return try await runBlocking {
                try self.pool.withConnection { connection in
                    try self.authorizeAnyTenant(token: token, on: connection)
                    return try work(request, connection)
                }
            }
        } catch let error as ReadError {
            return try Self.response(for: error)
        }
    }

    // MARK: Authentication and parameters

    /// A tenant token of any tenant, or the admin token.
    private func authorizeAnyTenant(token: String?, on connection: PostgresConnection) throws {
        guard let token, !token.isEmpty else {
            throw ReadError(kind: .notAuthenticated, message: "missing bearer token (Authorization: Bearer <tenant token or ADMIN_TOKEN>)")
        }
        if let adminToken, ConstantTime.equals(Array(token.utf8), adminToken) { return }
        try login.requireFitForTenants(on: connection)
        guard try TenantTokens.tenant(ofToken: token, on: connection) != nil else {
            throw ReadError(kind: .notAuthenticated, message: "unknown or revoked token")
        }
    }

    /// Who this request reads for: 401 without a valid token, 400 for a malformed tenant id,
    /// 403 for a tenant token on another tenant's path.
    func authorize(token: String?, pathTenant: String, on connection: PostgresConnection) throws -> Reader {
        guard let token, !token.isEmpty else {
            throw ReadError(kind: .notAuthenticated, message: "missing bearer token (Authorization: Bearer <tenant token or ADMIN_TOKEN>)")
        }
        if let adminToken, ConstantTime.equals(Array(token.utf8), adminToken) {
            return Reader(tenant: try ReaderSession.validTenantID(pathTenant), activeOnly: false)
        }
        try login.requireFitForTenants(on: connection)
        guard let tokenTenant = try TenantTokens.tenant(ofToken: token, on: connection) else {
            throw ReadError(kind: .notAuthenticated, message: "unknown or revoked token")
        }
        let tenant = try ReaderSession.validTenantID(pathTenant)
        guard tokenTenant == tenant else {
            throw ReadError(kind: .forbidden, message: "this token reads tenant \(tokenTenant) only")
        }
        return Reader(tenant: tenant, activeOnly: true)
    }

    private func signer(on connection: PostgresConnection) throws -> CursorSigner {
        if let loaded = signer.withLock({ $0 }) { return loaded }
        let loaded = try CursorSigner.load(on: connection)
        signer.withLock { $0 = loaded }
        return loaded
    }

    static func bearer(_ request: Request) -> String? {
        let header: String? = request.headers[.authorization]
        return header.flatMap { AdminAccess<AdminRequestContext>.bearerToken($0) }.map { String(Substring($0)) }
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
        case .forbidden, .tenantNotActive: .forbidden
        case .unknownTenant, .notFound: .notFound
        case .busy: error.parameter == "tenant" ? .tooManyRequests : .serviceUnavailable
        case .unavailable: .serviceUnavailable
        case .conflict: .conflict
        }
        if error.kind == .busy { body["parameter"] = nil }
        var response = try AdminServer.json(body, status: status)
        if error.kind == .notAuthenticated { response.headers[.wwwAuthenticate] = #"Bearer realm="audit-ingest""# }
        if error.kind == .busy { response.headers[.retryAfter] = String(ExportAdmission.retryAfterSeconds) }
        return response
    }
}
