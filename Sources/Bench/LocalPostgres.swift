import Foundation

/// A throwaway PostgreSQL server for `bench`: initdb in a temporary directory, tuned as
/// production would be (shared_buffers 1 GB, max_wal_size 4 GB: an untuned server flatters
/// every ratio, its checkpoints and small buffer cache dominating), TCP on a free port of
/// 127.0.0.1, run as the `postgres` OS user when the process runs as root. `stop()` removes everything.
public final class LocalPostgres {
    public let dataDirectory: String
    public let port: Int
    private let binDirectory: String

    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    public init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw BenchError("no PostgreSQL server under /usr/lib/postgresql: install postgresql, or pass --database-url")
        }
        binDirectory = "/usr/lib/postgresql/\(newest)/bin"
        dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("audit-ingest-bench-\(UUID().uuidString.prefix(8))").path
        port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if getuid() == 0 { try run("/bin/chown", ["postgres:postgres", dataDirectory]) }
        try pg("initdb", ["-D", dataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        let settings = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(dataDirectory)'
            shared_buffers = 1GB
            max_wal_size = 4GB
            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + "/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(Data(settings.utf8))
        try handle.close()
        try pg("pg_ctl", ["-D", dataDirectory, "-l", dataDirectory + "/server.log", "-w", "-t", "60", "start"])
    }

    /// Stops the server and deletes its data.
    public func stop() {
        _ = try? pg("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    private func pg(_ tool: String, _ arguments: [String]) throws {
        let path = binDirectory + "/" + tool
        if getuid() == 0 { try run("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments) } else { try run(path, arguments) }
    }

    /// Runs a tool to completion with posix_spawn and waitpid, output to a file: the server
    /// pg_ctl starts inherits its descriptors (a pipe would never close), and Foundation's
    /// Process was seen missing the exit of `runuser`.
    private func run(_ executable: String, _ arguments: [String]) throws {
        let outputPath = dataDirectory + ".out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw BenchError("\((executable as NSString).lastPathComponent) \(arguments.first ?? "") failed: \(text.suffix(500))")
        }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 ? getsockname(fd, $0, &length) : -1 }
        }
        guard bound == 0 else { throw BenchError("cannot find a free TCP port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Why a benchmark could not run, said so an operator knows what to do.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
