import Foundation

/// Runs programs for tests: the built `audit-ingest`, PostgreSQL's tools.
///
/// Uses posix_spawn and waitpid directly, with output going to a temporary file: Foundation's
/// Process can miss a child's exit when many run concurrently, and a daemon the child leaves
/// behind (a postmaster) would hold a pipe open forever.
public enum Shell {
    public struct Result: Sendable {
        public let exitCode: Int32
        /// Standard output and standard error, interleaved.
        public let output: String
    }

    /// Runs `executable` with `arguments` to completion; `input` is its standard input (default: none).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: Data? = nil) throws -> Result {
        let child = try spawn(executable, arguments, environment: environment, input: input)
        return child.wait()
    }

    /// Starts `executable` and returns at once; see `Child`.
    public static func spawn(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                             input: Data? = nil) throws -> Child {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("shell-\(UUID().uuidString).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inputPath = "/dev/null"
        if let input {
            inputPath = FileManager.default.temporaryDirectory.appendingPathComponent("shell-\(UUID().uuidString).in").path
            try input.write(to: URL(fileURLWithPath: inputPath))
        }
        defer { if input != nil { try? FileManager.default.removeItem(atPath: inputPath) } }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let environmentStrings = merged.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStringArray([executable] + arguments) { argv in
            withCStringArray(environmentStrings) { envp in
                posix_spawn(&pid, executable, &actions, nil, argv, envp)
            }
        }
        guard status == 0 else {
            throw TestDatabase.Unavailable(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return Child(pid: pid, outputPath: outputPath)
    }

    /// A started program.
    public struct Child: Sendable {
        public let pid: pid_t
        let outputPath: String

        /// Waits for the program to end and returns its exit code (128 + signal when killed). A
        /// program still running after `timeout` seconds is killed, so a stuck child fails its test
        /// instead of hanging the suite.
        public func wait(timeout: TimeInterval = 300) -> Result {
            var status: Int32 = 0
            let exited = waitUntil(timeout: .milliseconds(Int(timeout * 1000)), interval: .milliseconds(20)) {
                let result = waitpid(pid, &status, WNOHANG)
                return result == pid || (result == -1 && errno != EINTR)
            }
            if !exited {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            }
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: outputPath)
            let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return Result(exitCode: exitCode, output: output)
        }

        /// What the program has printed so far.
        public var outputSoFar: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

        public func signal(_ signal: Int32) { kill(pid, signal) }
    }

    /// A product of this package in the build directory the tests run from (`.build/debug`).
    public static func executable(named name: String) -> String {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent(name).path,
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name).path,
            TestDatabase.repositoryRoot.appendingPathComponent(".build/debug/\(name)").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }
}

private func withCStringArray<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    return (duplicates + [nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
}
