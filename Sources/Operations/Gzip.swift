import Foundation

/// Writes through a `gzip -c > path` child process.
final class GzipFile {
    private let input: Int32
    private let pid: pid_t
    private let path: String

    init(path: String) throws {
        self.path = path
        // Never overwrites. 0600 whatever the umask: an archive holds every tenant's events.
        let output = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, PartitionArchive.fileMode)
        guard output >= 0 else { throw OperationsError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let child = try spawnGzip(["-c"], fileDescriptor: output, pipeEnd: .input)
        self.pid = child.pid
        input = child.pipe
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(input, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw OperationsError("writing to gzip failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    func finish() throws {
        close(input)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw OperationsError("gzip failed writing \(path)") }
    }

    func abandon() {
        close(input)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        unlink(path)
    }
}

/// Reads a gzip file through a `gzip -dc` child process, chunk by chunk.
enum GunzipReader {
    /// Calls `body` with each chunk of `path` decompressed; throws when gzip fails (a damaged or
    /// truncated file) or `body` throws.
    static func forEachChunk(of path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw OperationsError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let (pid, output) = try spawnGzip(["-dc"], fileDescriptor: input, pipeEnd: .output)
        defer { close(output) }
        var failure: Error?
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while failure == nil {
            let count = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                failure = OperationsError("reading gzip's output failed: \(String(cString: strerror(errno)))")
            } else if count == 0 {
                break
            } else {
                do { try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[..<count])) } } catch { failure = error }
            }
        }
        if failure != nil { kill(pid, SIGTERM) }
        var exit: Int32 = 0
        while waitpid(pid, &exit, 0) == -1 && errno == EINTR {}
        if let failure { throw failure }
        guard exit == 0 else { throw OperationsError("\(path) is not a whole gzip file (gzip -dc exited with status \(exit >> 8))") }
    }
}

/// Which of gzip's ends the pipe is: the parent writes its input or reads its output.
enum GzipPipeEnd { case input, output }

/// Starts `gzip ARGUMENTS` with `fileDescriptor` as its stdout (`.input`: the parent writes to the
/// returned pipe) or its stdin (`.output`: the parent reads the returned pipe).
func spawnGzip(_ arguments: [String], fileDescriptor: Int32, pipeEnd: GzipPipeEnd) throws -> (pid: pid_t, pipe: Int32) {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { throw OperationsError("cannot create a pipe for gzip") }
    let (childEnd, parentEnd) = pipeEnd == .input ? (ends[0], ends[1]) : (ends[1], ends[0])
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeEnd == .input ? childEnd : fileDescriptor, 0)
    posix_spawn_file_actions_adddup2(&actions, pipeEnd == .input ? fileDescriptor : childEnd, 1)
    posix_spawn_file_actions_addclose(&actions, parentEnd)
    var pid: pid_t = 0
    let words = ["gzip"] + arguments
    let argv = words.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let status = posix_spawnp(&pid, "gzip", &actions, nil, argv, environ)
    close(childEnd)
    guard status == 0 else {
        close(parentEnd)
        throw OperationsError("cannot start gzip: \(String(cString: strerror(status)))")
    }
    return (pid, parentEnd)
}
