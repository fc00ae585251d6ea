import Foundation
import Postgres
import TestSupport

/// A migrated database with two tenants, events added in transactions of their own, real HTTP
/// receivers (receiver.py) and `audit-ingest stream` as a child process.
struct StreamFixture {
    static let tenantA = "0000000a-0000-4000-8000-000000000000"
    static let tenantB = "0000000b-0000-4000-8000-000000000000"

    let url: String
    let owner: PostgresConnection

    init() throws {
        url = try TestDatabase.createMigrated(prefix: "stream")
        owner = try PostgresConnection(url)
        try owner.execute("""
            SET audit.scope = 'system';
            INSERT INTO tenant (id, name, code) VALUES ('\(Self.tenantA)', 'Acme', 'acme'), ('\(Self.tenantB)', 'Bolt', 'bolt');
            RESET audit.scope;
            SELECT ensure_month_partitions('2026-03-01');
            """)
    }

    /// `count` events of `tenant` in one transaction (as a flush writes them).
    func insert(tenant: String, count: Int) throws {
        try owner.transaction { connection in
            try connection.execute("""
                LOCK TABLE feed_writer IN ROW EXCLUSIVE MODE;
                INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", custom_metadata)
                SELECT gen_random_uuid(), '\(tenant)', 'doc.read', 'INFO',
                       timestamptz '2026-03-10 08:00+00' + i * interval '1 second', jsonb_build_object('n', i)
                FROM generate_series(1, \(count)) i;
                SELECT record_feed_months('2026-03-01', '2026-04-01');
                """)
        }
    }

    /// The tenant's event ids in feed order: the order every destination must receive them in.
    func feedOrder(tenant: String) throws -> [String] {
        try owner.query("""
            SELECT id::text FROM audit_log WHERE tenant_id = $1::uuid ORDER BY ingest_xid, id, "timestamp"
            """, [tenant]).rows.compactMap { $0[0] }
    }

    /// `audit-ingest ARGS --database-url URL`.
    func cli(_ arguments: [String], environment: [String: String] = [:]) throws -> Shell.Result {
        try Shell.run(Shell.executable(named: "audit-ingest"), arguments + ["--database-url", url], environment: environment)
    }

    /// Creates a destination through the CLI; returns its id.
    func createDestination(_ arguments: [String]) throws -> String {
        let result = try cli(["stream", "destination", "create"] + arguments)
        guard result.exitCode == 0, let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let id = json["id"] as? String else {
            throw TestDatabase.Unavailable(description: "stream destination create failed: \(result.output)")
        }
        return id
    }

    func destinationState(_ id: String) throws -> (state: String, reason: String?) {
        let row = try owner.query("SELECT state, state_reason FROM stream_destination WHERE id = $1::uuid", [id]).rows.first
        return (row?[0] ?? "", row?[1] ?? nil)
    }

    /// `audit-ingest stream run ARGUMENTS`, polling every 50 ms.
    func startStreamer(_ arguments: [String] = [], environment: [String: String] = [:]) throws -> Shell.Child {
        try Shell.spawn(Shell.executable(named: "audit-ingest"),
                        ["stream", "run", "--poll-interval", "0.05", "--database-url", url] + arguments, environment: environment)
    }

    /// A new tenant token, through the CLI (stdout holds only the token).
    func createToken(tenant: String) throws -> String {
        let result = try cli(["tenant", "token", "create", "--tenant", tenant])
        guard result.exitCode == 0, let token = result.output.split(separator: "\n").last(where: { $0.hasPrefix("ait_") }) else {
            throw TestDatabase.Unavailable(description: "tenant token create failed: \(result.output)")
        }
        return String(token)
    }

    /// A new stream secret key file, through the CLI (`stream secret-key generate`).
    static func secretKeyFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stream-key-\(UUID().uuidString)").path
        let result = try Shell.run(Shell.executable(named: "audit-ingest"), ["stream", "secret-key", "generate", "--out", path])
        guard result.exitCode == 0 else { throw TestDatabase.Unavailable(description: "secret-key generate failed: \(result.output)") }
        return path
    }
}

/// receiver.py, started for a test: what it accepted, and a switch that makes it answer 503.
struct Receiver {
    struct Delivery {
        var path: String
        var headers: [String: String]
        var body: String
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
        /// A webhook batch's event ids, in order.
        var ids: [String] { (json?["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } }
    }

    let directory: URL
    let child: Shell.Child
    let port: Int
    var url: String { "http://127.0.0.1:\(port)/hook" }

    static func start(down: Bool = false, port: Int = 0) throws -> Receiver {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("receiver-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if down { FileManager.default.createFile(atPath: directory.appendingPathComponent("down").path, contents: Data()) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("receiver.py").path
        let child = try Shell.spawn("/usr/bin/env", ["python3", script, directory.path, String(port)])
        let portFile = directory.appendingPathComponent("port").path
        guard waitUntil(timeout: .seconds(10), interval: .milliseconds(20), { FileManager.default.fileExists(atPath: portFile) }),
              let text = try? String(contentsOfFile: portFile, encoding: .utf8), let bound = Int(text) else {
            child.signal(SIGKILL)
            throw TestDatabase.Unavailable(description: "receiver.py did not start: \(child.outputSoFar)")
        }
        return Receiver(directory: directory, child: child, port: bound)
    }

    func setDown(_ down: Bool) {
        let path = directory.appendingPathComponent("down").path
        if down { FileManager.default.createFile(atPath: path, contents: Data()) } else { try? FileManager.default.removeItem(atPath: path) }
    }

    func accepted() -> [Delivery] { read("accepted.ndjson") }
    func refused() -> [Delivery] { read("refused.ndjson") }

    /// Every accepted webhook event id, in the order received.
    func acceptedIDs() -> [String] { accepted().flatMap(\.ids) }

    private func read(_ name: String) -> [Delivery] {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let body = object["body"] as? String else { return nil }
            return Delivery(path: object["path"] as? String ?? "", headers: object["headers"] as? [String: String] ?? [:], body: body)
        }
    }

    func stop() {
        child.signal(SIGKILL)
        _ = child.wait(timeout: 10)
        try? FileManager.default.removeItem(at: directory)
    }
}
