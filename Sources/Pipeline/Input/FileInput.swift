import AuditCore
import Foundation

/// Reading a file source's bytes: a chunk buffer over a file, standard input or gzip's output.
extension FileSource {
    // MARK: Input

    /// A buffer over an input: `available` holds the unhandled bytes, from stream position
    /// `position` on.
    struct ChunkReader {
        let input: Input
        let buffer: UnsafeMutableRawPointer
        let capacity: Int
        let path: String
        private var start = 0
        private var filled = 0

        init(input: Input, buffer: UnsafeMutableRawPointer, capacity: Int, path: String) {
            self.input = input
            self.buffer = buffer
            self.capacity = capacity
            self.path = path
        }
        /// Stream position of `available`'s first byte.
        private(set) var position: Int64 = 0
        private(set) var totalRead = 0
        /// Bytes consumed by `consumeSkipped` since the last line start (they belong to one line).
        private var skipped: Int64 = 0

        var available: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer + start, count: filled - start) }

        /// Reads more after what the buffer holds (moving it to the front first). Returns false at
        /// the end of the input.
        mutating func fill() throws -> Bool {
            if start > 0 {
                if filled > start { memmove(buffer, buffer + start, filled - start) }
                filled -= start
                start = 0
            }
            while true {
                let count = Foundation.read(input.fd, buffer + filled, capacity - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw IngestError(.sourceUnreadable, "reading \(path) failed: \(String(cString: strerror(errno)))")
                }
                filled += count
                totalRead += count
                return count > 0
            }
        }

        /// The first `count` available bytes are handled.
        mutating func consume(_ count: Int) {
            start += count
            position += Int64(count) + skipped
            skipped = 0
        }

        /// The first `count` available bytes are part of a line that ends later: `position` stays
        /// at that line's start until it is consumed.
        mutating func consumeSkipped(_ count: Int) {
            start += count
            skipped += Int64(count)
        }

        /// Drops bytes up to and with the next newline (or to the end), hashing them.
        mutating func skipToNewline(hashing hasher: inout PrefixHasher) throws {
            while true {
                if available.isEmpty, try !fill() { return }
                if let newline = memchr(available.baseAddress!, 0x0A, available.count) {
                    let end = available.baseAddress!.distance(to: newline) + 1
                    hasher.update(UnsafeRawBufferPointer(rebasing: available.prefix(end)))
                    consume(end)
                    return
                }
                hasher.update(available)
                consume(available.count)
            }
        }
    }

    /// An open input: a file, standard input, or gzip's output pipe. Owned by one read; closed
    /// by it.
    final class Input {
        let fd: Int32
        let path: String
        /// gzip's pid until it is reaped (never signalled after: the pid may be reused).
        private var gzip: pid_t?

        init(fd: Int32, gzip: pid_t?, path: String) {
            self.fd = fd
            self.gzip = gzip
            self.path = path
        }

        func close() {
            if fd != 0 { _ = Foundation.close(fd) }
            if let gzip {
                kill(gzip, SIGTERM)
                var status: Int32 = 0
                while waitpid(gzip, &status, 0) == -1 && errno == EINTR {}
                self.gzip = nil
            }
        }

        /// Checks that gzip succeeded (a corrupt or truncated file must not look complete).
        func finish() throws {
            guard let gzip else { return }
            var status: Int32 = 0
            while waitpid(gzip, &status, 0) == -1 && errno == EINTR {}
            self.gzip = nil
            guard status == 0 else { throw IngestError(.sourceUnreadable, "gzip could not decompress \(path) (exit status \(status >> 8))") }
        }
    }

    func openInput() throws -> Input {
        if path == "-" { return Input(fd: 0, gzip: nil, path: path) }
        if !isCompressed {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw IngestError(.sourceUnreadable, "cannot open \(path): \(String(cString: strerror(errno)))") }
            posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
            return Input(fd: fd, gzip: nil, path: path)
        }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw IngestError(.sourceUnreadable, "cannot create a pipe for gzip") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        var pid: pid_t = 0
        let arguments = ["gzip", "-dc", "--", path]
        let cArguments = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let status = posix_spawnp(&pid, "gzip", &actions, nil, cArguments, environ)
        Foundation.close(pipeEnds[1])
        guard status == 0 else {
            Foundation.close(pipeEnds[0])
            throw IngestError(.sourceUnreadable, "cannot start gzip to read \(path): \(String(cString: strerror(status)))")
        }
        return Input(fd: pipeEnds[0], gzip: pid, path: path)
    }
}
