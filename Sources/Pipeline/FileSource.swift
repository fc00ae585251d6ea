import AuditCore
import Foundation

/// NDJSON from a file (`.gz` decompressed by `gzip -dc`) or standard input (`-`). A message's
/// position is its line number from 0 in partition 0; the source name includes a fingerprint of
/// the content, so a re-run on the same file resumes and a changed file is a new source.
public struct FileSource: Sendable {
    public let path: String
    /// `file:/abs/path#fingerprint`, or `stdin:...` (standard input never resumes).
    public let name: String
    /// Size on disk, when known (for progress and ETA; compressed size for `.gz`).
    public let size: Int?
    public var isCompressed: Bool { path.hasSuffix(".gz") }

    public init(path: String) throws {
        self.path = path
        if path == "-" {
            name = "stdin:\(ProcessInfo.processInfo.processIdentifier)-\(Int(Date().timeIntervalSince1970))"
            size = nil
            return
        }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var info = stat()
        guard stat(absolute, &info) == 0 else {
            throw IngestError(.sourceUnreadable, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw IngestError(.sourceUnreadable, "\(path) is not a regular file")
        }
        size = Int(info.st_size)
        name = "file:\(absolute)#\(try Self.fingerprint(absolute, size: Int(info.st_size)))"
    }

    /// FNV-1a over the size and the first and last 1 MiB: cheap on large files, and any append,
    /// truncation or edit near either end makes a new source.
    static func fingerprint(_ path: String, size: Int) throws -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw IngestError(.sourceUnreadable, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ bytes: UnsafeRawBufferPointer) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01B3
            }
        }
        withUnsafeBytes(of: UInt64(size)) { mix($0) }
        let window = 1 << 20
        var buffer = [UInt8](repeating: 0, count: window)
        for start in Set([0, max(0, size - window)]).sorted() {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(start)) }
            guard count >= 0 else { throw IngestError(.sourceUnreadable, "cannot read \(path)") }
            buffer.withUnsafeBytes { mix(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        return String(hash, radix: 16)
    }

    /// Reads every line, calling `line` for those at or after `startingAt` (a line over
    /// `maxLineBytes` goes to `oversized` with its first KiB). `progress` gets bytes read so far.
    /// Returns the number of lines in the input. `line` returns false to stop early.
    public func read(startingAt: Int64, maxLineBytes: Int,
                     line: (Int64, UnsafeRawBufferPointer) -> Bool,
                     oversized: (Int64, UnsafeRawBufferPointer) -> Void,
                     progress: (Int) -> Void) throws -> Int64 {
        let input = try openInput()
        defer { input.close() }
        let capacity = max(maxLineBytes + 2, 1 << 20) + (1 << 20)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }

        var filled = 0          // bytes in buffer
        var lineNumber: Int64 = 0
        var totalRead = 0
        var skippingOversized = false
        var stopped = false
        while !stopped {
            let count = Foundation.read(input.fd, buffer + filled, capacity - filled)
            if count < 0 {
                if errno == EINTR { continue }
                throw IngestError(.sourceUnreadable, "reading \(path) failed: \(String(cString: strerror(errno)))")
            }
            let atEnd = count == 0
            filled += count
            totalRead += count
            progress(totalRead)

            var start = 0
            while start < filled {
                guard let newline = memchr(buffer + start, 0x0A, filled - start) else { break }
                let end = buffer.distance(to: newline)
                if skippingOversized {
                    skippingOversized = false
                } else if lineNumber >= startingAt {
                    var length = end - start
                    if length > 0, buffer.load(fromByteOffset: start + length - 1, as: UInt8.self) == 0x0D { length -= 1 }
                    let bytes = UnsafeRawBufferPointer(start: buffer + start, count: length)
                    if length > maxLineBytes {
                        oversized(lineNumber, UnsafeRawBufferPointer(rebasing: bytes.prefix(1024)))
                    } else if !line(lineNumber, bytes) {
                        stopped = true
                    }
                }
                lineNumber += 1
                start = end + 1
                if stopped { break }
            }
            if stopped { break }
            // Keep the unfinished line at the front of the buffer.
            let remaining = filled - start
            if remaining > 0 && start > 0 { memmove(buffer, buffer + start, remaining) }
            filled = remaining
            if filled > maxLineBytes + 1 && !skippingOversized {
                // An over-long line without a newline yet: report it now and skip the rest of it.
                if lineNumber >= startingAt {
                    oversized(lineNumber, UnsafeRawBufferPointer(start: buffer, count: min(filled, 1024)))
                }
                skippingOversized = true
                filled = 0
            } else if skippingOversized && filled > 0 && !atEnd {
                filled = 0
            }
            if atEnd {
                if filled > 0 && !skippingOversized {  // last line without a newline
                    if lineNumber >= startingAt {
                        var length = filled
                        if buffer.load(fromByteOffset: length - 1, as: UInt8.self) == 0x0D { length -= 1 }
                        if !line(lineNumber, UnsafeRawBufferPointer(start: buffer, count: length)) { stopped = true }
                    }
                    lineNumber += 1
                } else if skippingOversized {
                    lineNumber += 1
                }
                break
            }
        }
        if !stopped { try input.finish() }
        return lineNumber
    }

    /// An open input: a file, standard input, or gzip's output pipe.
    private struct Input {
        let fd: Int32
        let gzip: pid_t?
        let path: String

        func close() {
            if fd != 0 { _ = Foundation.close(fd) }
            if let gzip {
                kill(gzip, SIGTERM)
                var status: Int32 = 0
                waitpid(gzip, &status, 0)
            }
        }

        /// Checks that gzip succeeded (a corrupt or truncated file must not look complete).
        func finish() throws {
            guard let gzip else { return }
            var status: Int32 = 0
            while waitpid(gzip, &status, 0) == -1 && errno == EINTR {}
            guard status == 0 else { throw IngestError(.sourceUnreadable, "gzip could not decompress \(path) (exit status \(status >> 8))") }
        }
    }

    private func openInput() throws -> Input {
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
