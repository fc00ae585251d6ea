import AuditRead
import Crypto
import Foundation
import Hummingbird
import NIOCore

/// What the admin server serves from its own binary: the OpenAPI document of its API
/// (`/openapi.json`, public: it holds no data) and the page tenants open to read their trail
/// (`/v1/tenants/{tenant_id}/viewer`). The page holds no data either: it asks for the token
/// and sends it only in the Authorization header of its own requests.
enum StaticDocuments {
    static let openAPIPath = "/openapi.json"
    static let viewerPath = "/v1/tenants/:tenant_id/viewer"

    static let openAPI = ByteBuffer(bytes: PackageResources.openapi_json)
    static let viewer = ByteBuffer(bytes: PackageResources.viewer_html)

    /// The page's policy: its one inline script and one inline style by hash, requests to this
    /// server only, no framing, no forms posting elsewhere, and Trusted Types so no string of
    /// event data can become markup.
    static let viewerPolicy: String = {
        let page = String(decoding: PackageResources.viewer_html, as: UTF8.self)
        return """
            default-src 'none'; script-src \(hash(of: "script", in: page)); style-src \(hash(of: "style", in: page)); \
            connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
            require-trusted-types-for 'script'; trusted-types 'none'
            """
    }()

    /// `'sha256-...'` of the text of the page's one `<element>`, as a browser hashes it: with its
    /// line breaks made LF. A page without the element is a build mistake: the server stops.
    private static func hash(of element: String, in page: String) -> String {
        guard let open = page.range(of: "<\(element)>"), let close = page.range(of: "</\(element)>", range: open.upperBound..<page.endIndex) else {
            preconditionFailure("viewer.html has no <\(element)> element")
        }
        let text = page[open.upperBound..<close.lowerBound].replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        return "'sha256-\(Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString())'"
    }

    static func register<Context: RequestContext>(on router: Router<Context>) {
        router.get(RouterPath(openAPIPath)) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"], body: .init(byteBuffer: openAPI))
        }
        router.get(RouterPath(viewerPath)) { _, context in
            guard (try? ReaderSession.validTenantID(context.parameters.get("tenant_id") ?? "")) != nil else {
                return try AdminServer.error("not a tenant id (expected a UUID)", status: .notFound)
            }
            var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                       .contentSecurityPolicy: viewerPolicy, .xContentTypeOptions: "nosniff"]
            headers[.init("Referrer-Policy")!] = "no-referrer"
            headers[.init("X-Frame-Options")!] = "DENY"
            headers[.init("Cross-Origin-Opener-Policy")!] = "same-origin"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: viewer))
        }
    }
}
