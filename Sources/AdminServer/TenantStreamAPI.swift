import AuditCore
import AuditRead
import Foundation
import Hummingbird
import NIOCore
import Postgres
import Streaming

/// A tenant's own stream destinations (`/v1/tenants/{tenant_id}/stream/destinations`), managed
/// with its token as `TenantReadAPI` authenticates it (the admin token acts for any tenant).
///
/// What a tenant cannot do that an operator can: name a secret by reference (it sends the
/// secret, which is sealed under the operator's stream secret key and never shown again), use
/// a URL that is not https or that resolves to a private address (`DestinationAddress`), or
/// change a destination its operator made for it. It sees only its own tenant's destinations.
final class TenantStreamAPI: Sendable {
    static let path = "/v1/tenants/:tenant_id/stream/destinations"

    private let read: TenantReadAPI
    private let pool: ConnectionPool
    private let secrets: Streamer.Secrets

    init(read: TenantReadAPI, pool: ConnectionPool, secrets: Streamer.Secrets) {
        self.read = read
        self.pool = pool
        self.secrets = secrets
    }

    func register(on router: Router<AdminRequestContext>) {
        router.get(RouterPath(Self.path)) { request, context in
            try await self.answer(request, context) { reader, connection in
                try AdminServer.json(try TenantDestinations.list(tenant: reader.tenant, on: connection).map(View.init))
            }
        }
        router.post(RouterPath(Self.path)) { request, context in
            let body = try await request.body.collect(upTo: 16 * 1024)
            // Authenticated and checked (the URL's DNS lookup too) before a connection is held for the create.
            let checked: DestinationRequest
            do {
                _ = try await self.authorized(request, context) { reader, _ in reader }
                checked = try await runBlocking { try self.checked(body) }
            } catch let error as ReadError {
                return try TenantReadAPI.response(for: error)
            }
            return try await self.answer(request, context) { reader, connection in
                try self.create(checked, for: reader, on: connection)
            }
        }
        router.get(RouterPath(Self.path + "/:destination_id")) { request, context in
            try await self.answer(request, context) { reader, connection in
                try AdminServer.json(View(try self.destination(context, of: reader, on: connection)))
            }
        }
        router.delete(RouterPath(Self.path + "/:destination_id")) { request, context in
            try await self.change(request, context) { id, tenant, connection in
                try TenantDestinations.delete(id: id, tenant: tenant, on: connection)
            }
        }
        for (action, state) in [("pause", StreamDestination.State.paused), ("resume", .active)] {
            router.post(RouterPath(Self.path + "/:destination_id/" + action)) { request, context in
                try await self.change(request, context) { id, tenant, connection in
                    try TenantDestinations.setState(state, id: id, tenant: tenant, on: connection)
                }
            }
        }
        router.post(RouterPath(Self.path + "/:destination_id/rewind")) { request, context in
            let to = request.uri.queryParameters.get("to").map { String($0) }
            return try await self.change(request, context) { id, tenant, connection in
                let since = to.flatMap { RFC3339.unixMicroseconds($0) }
                guard let to, to == "beginning" || since != nil else {
                    throw ReadError(kind: .badParameter, parameter: "to",
                                    message: "to: beginning, or an RFC 3339 time with an offset (2026-12-01T00:00:00Z)")
                }
                return try TenantDestinations.rewind(id: id, since: to == "beginning" ? nil : since, tenant: tenant, on: connection)
            }
        }
        router.post(RouterPath(Self.path + "/:destination_id/test")) { request, context in
            try await self.test(request, context)
        }
    }

    // MARK: Requests

    /// Authenticates (401/403), checks the tenant exists and, for its own token, is active
    /// (404/403), then runs `work` on a read-API connection; ReadErrors and refusals from the
    /// database become 4xx answers.
    private func answer(_ request: Request, _ context: AdminRequestContext,
                        _ work: @escaping @Sendable (TenantReadAPI.Reader, PostgresConnection) throws -> Response) async throws -> Response {
        do {
            return try await authorized(request, context, work)
        } catch let error as ReadError {
            return try TenantReadAPI.response(for: error)
        }
    }

    private func authorized<T: Sendable>(_ request: Request, _ context: AdminRequestContext,
                                         _ work: @escaping @Sendable (TenantReadAPI.Reader, PostgresConnection) throws -> T) async throws -> T {
        let token = TenantReadAPI.bearer(request)
        let pathTenant = context.parameters.get("tenant_id") ?? ""
        return try await runBlocking {
            try self.pool.withConnection { connection in
                let reader = try self.read.authorize(token: token, pathTenant: pathTenant, on: connection)
                try reader.session(on: connection) { _ in }
                do { return try work(reader, connection) } catch let error as PostgresError {
                    throw Self.refusal(error) ?? error
                }
            }
        }
    }

    private func change(_ request: Request, _ context: AdminRequestContext,
                        _ work: @escaping @Sendable (String, String, PostgresConnection) throws -> TenantDestinations.Change) async throws -> Response {
        let id = context.parameters.get("destination_id") ?? ""
        return try await answer(request, context) { reader, connection in
            guard UUIDValue(id) != nil else { throw ReadError(kind: .notFound, message: "no destination \(id) (ids are UUIDs)") }
            switch try work(id.lowercased(), reader.tenant, connection) {
            case .notFound: throw ReadError(kind: .notFound, message: "no destination \(id) of tenant \(reader.tenant)")
            case .operatorManaged:
                throw ReadError(kind: .forbidden, message: "destination \(id) is managed by the operator; ask them to change it")
            case .done:
                if request.method == .delete { return try AdminServer.json(["deleted": id.lowercased()]) }
                return try AdminServer.json(View(try self.destination(id, of: reader, on: connection)))
            }
        }
    }

    private func destination(_ context: AdminRequestContext, of reader: TenantReadAPI.Reader,
                             on connection: PostgresConnection) throws -> TenantDestinations.Listed {
        try destination(context.parameters.get("destination_id") ?? "", of: reader, on: connection)
    }

    private func destination(_ id: String, of reader: TenantReadAPI.Reader, on connection: PostgresConnection) throws -> TenantDestinations.Listed {
        guard UUIDValue(id) != nil, let found = try TenantDestinations.find(id, tenant: reader.tenant, on: connection) else {
            throw ReadError(kind: .notFound, message: "no destination \(id) of tenant \(reader.tenant)")
        }
        return found
    }

    /// The create's body, read and its URL checked.
    private func checked(_ body: ByteBuffer) throws -> DestinationRequest {
        guard secrets.key != nil else {
            throw ReadError(kind: .unavailable, message: """
                this server does not take tenants' destinations: its operator has not given it a stream secret key \
                (admin serve --stream-secret-key-file)
                """)
        }
        let request = try DestinationRequest(body: Array(buffer: body))
        do { try DestinationAddress.check(request.url, allowLocal: secrets.allowLocalDestinations) } catch {
            throw ReadError(kind: .badParameter, parameter: "url", message: error.description)
        }
        return request
    }

    private func create(_ checked: DestinationRequest, for reader: TenantReadAPI.Reader, on connection: PostgresConnection) throws -> Response {
        guard let key = secrets.key else { throw ReadError(kind: .unavailable, message: "no stream secret key") }
        var request = checked
        // A webhook is always signed: without a secret given, one is made and shown this once.
        var made: String?
        if request.secret == nil && request.kind == .webhook {
            made = "whsec_" + Self.randomSecret()
            request.secret = made
        }
        let created = try TenantDestinations.create(
            StreamDestinations.New(name: request.name, tenantID: reader.tenant, kind: request.kind, url: request.url, secretReference: nil,
                                   batchSize: request.batchSize, failAfter: .seconds(request.failAfterSeconds), fromNow: request.fromNow),
            secret: request.secret.map { Array($0.utf8) }, key: key, on: connection)
        var view = View(TenantDestinations.Listed(destination: created, delivered: 0, lastDelivery: nil))
        view.signingSecret = made
        return try AdminServer.json(view, status: .created)
    }

    /// One delivery with no events (webhook) or one test event (Splunk HEC), signed like any
    /// other: 200 when the receiver took it, 502 with its answer when not.
    private func test(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let destination: StreamDestination
        do {
            destination = try await authorized(request, context) { reader, connection in
                let found = try self.destination(context, of: reader, on: connection).destination
                guard found.managedBy == .tenant else {
                    throw ReadError(kind: .forbidden, message: "destination \(found.id) is managed by the operator; ask them to test it")
                }
                return found
            }
        } catch let error as ReadError {
            return try TenantReadAPI.response(for: error)
        }
        do {
            try await DeliveryTest.send(to: destination, secrets: secrets)
            return try AdminServer.json(TestResult(delivered: true))
        } catch {
            return try AdminServer.json(TestResult(delivered: false, error: "\(error)"), status: .badGateway)
        }
    }

    struct TestResult: Encodable {
        var delivered: Bool
        var error: String?
    }

    /// 32 random bytes (getrandom), base64url: a webhook's signing secret.
    static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// What the database refused, as the client's fault: 409 for a taken name or the limit, 400 for a bad value.
    static func refusal(_ error: PostgresError) -> ReadError? {
        switch error.sqlState {
        case "23505": ReadError(kind: .conflict, parameter: "name", message: "name: this tenant has a destination of that name")
        case "54000": ReadError(kind: .conflict, message: "a tenant has at most \(TenantDestinations.limit) stream destinations")
        case "23514", "22P02", "22023", "22008", "22009": ReadError(kind: .badParameter, message: "refused by the schema: \(error.message)")
        case "55P03": ReadError(kind: .busy, message: "a delivery to this destination is in flight and slow to finish; try again")
        case "57014": ReadError(kind: .busy, message: "this took too long (a rewind reads the tenant's rows once); try again later")
        default: nil
        }
    }

    // MARK: Bodies

    /// A destination as the tenant sees it: never a secret (only `has_secret`), the URL without
    /// its query or password; `signing_secret` once, in the answer to the create that made it.
    struct View: Encodable {
        var id, name, tenantID, kind, url, managedBy, state: String
        var stateReason: String?
        var hasSecret: Bool
        var batchSize: Int
        var failAfterSeconds: Int64
        var delivered: Int
        var lastDelivery: String?
        var signingSecret: String?

        enum CodingKeys: String, CodingKey {
            case id, name, tenantID = "tenant_id", kind, url, managedBy = "managed_by", state, stateReason = "state_reason"
            case hasSecret = "has_secret", batchSize = "batch_size", failAfterSeconds = "fail_after_seconds", delivered
            case lastDelivery = "last_delivery", signingSecret = "signing_secret"
        }

        init(_ listed: TenantDestinations.Listed) {
            let destination = listed.destination
            id = destination.id
            name = destination.name
            tenantID = destination.tenantID ?? ""
            kind = destination.kind.rawValue
            url = StreamDestination.shown(destination.url)
            managedBy = destination.managedBy.rawValue
            state = destination.state.rawValue
            // An operator's destination's reason may name its secret's reference or its receiver's answer.
            stateReason = destination.managedBy == .tenant ? destination.stateReason : nil
            hasSecret = destination.hasSecret
            batchSize = destination.batchSize
            failAfterSeconds = destination.failAfter.components.seconds
            delivered = listed.delivered
            lastDelivery = listed.lastDelivery
        }
    }
}

/// The body of a tenant's create: `{"name", "url", "kind"?, "secret"?, "batch_size"?,
/// "fail_after_seconds"?, "from"?}`. Unknown fields are refused, as unknown query parameters are.
struct DestinationRequest {
    static let fields: Set<String> = ["name", "url", "kind", "secret", "batch_size", "fail_after_seconds", "from"]

    var name: String
    var url: String
    var kind: StreamDestination.Kind
    var secret: String?
    var batchSize: Int
    var failAfterSeconds: Int
    var fromNow: Bool

    init(body: [UInt8]) throws(ReadError) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw ReadError(kind: .badParameter, message: "the body must be a JSON object: {\"name\": ..., \"url\": ...}")
        }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw ReadError(kind: .badParameter, parameter: unknown,
                            message: "\(unknown): unknown field (known: \(Self.fields.sorted().joined(separator: ", ")))")
        }
        guard let name = object["name"] as? String, name.range(of: #"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"#, options: .regularExpression) != nil else {
            throw ReadError(kind: .badParameter, parameter: "name", message: "name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        guard let url = object["url"] as? String, url.utf8.count <= 2048, !url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
              let parts = URLComponents(string: url), (parts.port ?? 443) > 0, (parts.port ?? 443) <= 65535 else {
            throw ReadError(kind: .badParameter, parameter: "url",
                            message: "url: an https:// URL of at most 2048 bytes, without spaces or control characters, any port 1-65535")
        }
        switch object["kind"] as? String ?? "webhook" {
        case "webhook": kind = .webhook
        case "splunk_hec", "splunk-hec": kind = .splunkHEC
        default: throw ReadError(kind: .badParameter, parameter: "kind", message: "kind: webhook or splunk_hec (file and kafka destinations are the operator's)")
        }
        if let value = object["secret"] {
            // A secret goes into a header (Splunk's Authorization) or an HMAC: printable text only,
            // so that no transport ever refuses it and quotes it back in an error.
            guard let secret = value as? String, (16...4096).contains(secret.utf8.count),
                  !secret.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ReadError(kind: .badParameter, parameter: "secret", message: "secret: a string of 16-4096 bytes without control characters")
            }
            self.secret = secret
        } else if kind == .splunkHEC {
            throw ReadError(kind: .badParameter, parameter: "secret", message: "secret: a Splunk HEC destination needs its HEC token")
        }
        batchSize = try Self.integer(object, "batch_size", default: 500, in: 1...1000)
        failAfterSeconds = try Self.integer(object, "fail_after_seconds", default: 3600, in: 60...2_592_000)
        switch object["from"] as? String ?? "now" {
        case "now": fromNow = true
        case "beginning": fromNow = false
        default: throw ReadError(kind: .badParameter, parameter: "from", message: "from: now (only new events) or beginning (every stored event first)")
        }
        self.name = name
        self.url = url
    }

    private static func integer(_ object: [String: Any], _ field: String, default value: Int, in range: ClosedRange<Int>) throws(ReadError) -> Int {
        guard let given = object[field] else { return value }
        // JSON's true and false arrive as numbers too: a count must be a number in the body.
        let isBoolean = (given as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
        guard !isBoolean, let number = given as? Int, range.contains(number) else {
            throw ReadError(kind: .badParameter, parameter: field, message: "\(field): a whole number, \(range.lowerBound)-\(range.upperBound)")
        }
        return number
    }
}
