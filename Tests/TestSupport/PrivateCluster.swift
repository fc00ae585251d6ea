import Foundation
import Postgres

/// A PostgreSQL cluster of a test's own, for tests that stop or restart the server (they must
/// not disturb the shared one). initdb in a temporary directory, TCP on a free port of 127.0.0.1;
/// run as the `postgres` OS user when the tests run as root.
public final class PrivateCluster: @unchecked Sendable {  // used from one test at a time
    public let dataDirectory: String
    public let port: Int
    private let binDirectory: String
    private let runAsPostgres: Bool

    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    public init() throws {
        binDirectory = try Self.findBinDirectory()
        runAsPostgres = getuid() == 0
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("audit-ingest-test-pg-\(UUID().uuidString.prefix(8))").path
        port = try freeTCPPort()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if runAsPostgres { try Shell.run("/bin/chown", ["postgres:postgres", dataDirectory]) }
        try pg("initdb", ["-D", dataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        let settings = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(dataDirectory)'
            fsync = off
            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + "/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(Data(settings.utf8))
        try handle.close()
        try start()
    }

    deinit {
        _ = try? pg("pg_ctl", ["-D", dataDirectory, "-m", "immediate", "stop"])
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    public func start() throws {
        try pg("pg_ctl", ["-D", dataDirectory, "-l", dataDirectory + "/server.log", "-w", "-t", "60", "start"])
    }

    public func stop() throws {
        try pg("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
    }

    /// How a restart ends the sessions: `fast` terminates each with a FATAL message (57P01);
    /// `immediate` kills the server as a crash or a failover does, and sessions see their socket
    /// close with nothing said.
    public enum ShutdownMode: String, Sendable { case fast, immediate }

    /// Restarts the server: every open session is cut.
    public func restart(_ mode: ShutdownMode = .fast) throws {
        try pg("pg_ctl", ["-D", dataDirectory, "-m", mode.rawValue, "-w", "-l", dataDirectory + "/server.log", "restart"])
    }

    /// Asks every role but `postgres` for its password over TCP (SCRAM), as a production server
    /// does; returns once the server applies it.
    public func requirePasswords() throws {
        let rules = """
            local all all trust
            host all postgres 127.0.0.1/32 trust
            host all all 127.0.0.1/32 scram-sha-256

            """
        try Data(rules.utf8).write(to: URL(fileURLWithPath: dataDirectory + "/pg_hba.conf"))
        try pg("pg_ctl", ["-D", dataDirectory, "reload"])
        let probe = "postgresql://no_such_role_probe@127.0.0.1:\(port)/postgres?connect_timeout=5"
        let applied = waitUntil(timeout: .seconds(30)) {
            do { _ = try PostgresConnection(probe); return false } catch { return "\(error)".contains("password") }
        }
        guard applied else { throw TestDatabase.Unavailable(description: "pg_hba.conf was not reloaded") }
    }

    @discardableResult
    private func pg(_ tool: String, _ arguments: [String]) throws -> Shell.Result {
        let path = binDirectory + "/" + tool
        let result = runAsPostgres
            ? try Shell.run("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
            : try Shell.run(path, arguments)
        guard result.exitCode == 0 else {
            throw TestDatabase.Unavailable(description: "\(tool) failed (\(result.exitCode)): \(result.output)")
        }
        return result
    }

    private static func findBinDirectory() throws -> String {
        if let fromEnvironment = ProcessInfo.processInfo.environment["AUDIT_TEST_PGBIN"] { return fromEnvironment }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw TestDatabase.Unavailable(description: "no PostgreSQL server under /usr/lib/postgresql: run scripts/install-system-packages")
        }
        return "/usr/lib/postgresql/\(newest)/bin"
    }
}

/// A TCP port on 127.0.0.1 that is free right now.
public func freeTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw TestDatabase.Unavailable(description: "cannot find a free TCP port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
