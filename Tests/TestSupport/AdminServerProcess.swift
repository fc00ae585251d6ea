import Foundation

/// `audit-ingest admin serve` started for a test, and a real HTTP client (curl) to talk to it.
public struct AdminServerProcess: Sendable {
    public let child: Shell.Child
    /// `http://127.0.0.1:PORT`.
    public let base: String
    public let databaseURL: String
    public var port: Int { Int(base.split(separator: ":").last!)! }

    public init(child: Shell.Child, base: String, databaseURL: String) {
        self.child = child
        self.base = base
        self.databaseURL = databaseURL
    }

    public struct Reply: Sendable {
        public let status: Int
        public let body: String
        /// Response headers (lower-case names), when asked for.
        public let headers: [String: String]
        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    /// Starts the server on a free port with `ADMIN_TOKEN` set to `token` (empty: none) and waits
    /// (polling `/livez`) until it answers. The tenant read API is served as
    /// `TestDatabase.readAPILogin` (`READ_DATABASE_URL`) unless `ownReadLogin` is false.
    public static func start(databaseURL: String, token: String?, extraArguments: [String] = [],
                             ownReadLogin: Bool = true) throws -> AdminServerProcess {
        let port = try freeTCPPort()
        var environment = ["ADMIN_TOKEN": token ?? ""]
        if ownReadLogin, let readURL = try TestDatabase.readAPIURL(for: databaseURL) { environment["READ_DATABASE_URL"] = readURL }
        let child = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                    ["admin", "serve", "--admin-port", "\(port)", "--database-url", databaseURL,
                                     "--migrations-dir", TestDatabase.migrationsDirectory.path] + extraArguments,
                                    environment: environment)
        let server = AdminServerProcess(child: child, base: "http://127.0.0.1:\(port)", databaseURL: databaseURL)
        if waitUntil(timeout: .seconds(10), interval: .milliseconds(20), { try server.request("/livez").status == 200 }) {
            return server
        }
        child.signal(SIGKILL)
        throw TestDatabase.Unavailable(description: "admin server did not start: \(child.outputSoFar)")
    }

    /// SIGTERM, then waits for the exit; returns what the server printed.
    @discardableResult
    public func stop() -> String {
        child.signal(SIGTERM)
        return child.wait(timeout: 20).output
    }

    /// One request through curl; `token` goes in `Authorization: Bearer`, `json` is sent as the body.
    public func request(_ path: String, method: String = "GET", token: String? = nil, headers: [String] = [],
                        json: String? = nil) throws -> Reply {
        let headerFile = FileManager.default.temporaryDirectory.appendingPathComponent("headers-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: headerFile) }
        var arguments = ["-s", "-S", "-g", "-X", method, "-D", headerFile, "-w", "\n%{http_code}", base + path]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        for header in headers { arguments += ["-H", header] }
        if let json { arguments += ["-H", "Content-Type: application/json", "--data-binary", json] }
        let result = try Shell.run("/usr/bin/curl", arguments)
        guard result.exitCode == 0, let newline = result.output.lastIndex(of: "\n"),
              let status = Int(result.output[result.output.index(after: newline)...]) else {
            throw TestDatabase.Unavailable(description: "curl failed: \(result.output)")
        }
        let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        let headers = headerText.split(separator: "\r\n").reduce(into: [String: String]()) { headers, line in
            guard let colon = line.firstIndex(of: ":") else { return }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, body: String(result.output[..<newline]), headers: headers)
    }
}
