import AuditCore
import Foundation

/// NDJSON from a file (`.gz` decompressed by `gzip -dc`) or standard input (`-`).
///
/// A message's position is the byte offset of its line in the (decompressed) stream, in
/// partition 0. A file is identified by its content, not its path (DESIGN invariant 7): by a hash
/// of its first line, so an appended, renamed, copied or rotated file is the same source and
/// continues where an earlier run stopped. What makes that safe is the prefix check: the earlier
/// run stored a hash of every byte before its position, and reading verifies it before going on,
/// so an edited or truncated file is refused rather than silently skipped.
public struct FileSource: Sendable {
    /// What kind of source this is, and what names it.
    public enum Identity: Sendable, Equatable {
        /// A file: the hex hash of its first non-blank line and what precedes it (at most
        /// `headLimit` bytes).
        case content(head: String)
        /// Standard input: a name given with `--source-name` (resumes by that name), or a fresh
        /// unique id for each run.
        case standardInput(name: String)
    }

    /// The first line is the file's fingerprint; a first line longer than this counts this much.
    public static let headLimit = 4096

    public let path: String
    public private(set) var identity: Identity
    /// Size on disk, when known (for progress and ETA; compressed size for `.gz`).
    public let size: Int?
    public var isCompressed: Bool { path.hasSuffix(".gz") }
    public var isStandardInput: Bool { path == "-" }

    /// The source name in ingest_offsets and audit_dead_letter before any generation suffix
    /// (`file:<head hash>`, `stdin:<name>` or `stdin:<uuid>`).
    public var baseName: String {
        switch identity {
        case .content(let head): "file:\(head)"
        case .standardInput(let name): "stdin:\(name)"
        }
    }

    /// - Parameter sourceName: for standard input: a name under which runs resume (a pipe that is
    ///   re-sent). Without it every standard-input run is a new source.
    /// The source of a file that held blank lines only (its head is empty).
    public static var blankHeadName: String {
        var hasher = PrefixHasher()
        hasher.update(UnsafeRawBufferPointer(start: nil, count: 0))
        return "file:" + String(UInt64(bitPattern: hasher.value), radix: 16)
    }

    /// True when the input starts with a blank line (it may be a file that held only blank lines
    /// when an earlier run read it).
    public private(set) var startsBlank = false

    public init(path: String, sourceName: String? = nil) throws {
        self.path = path
        if path == "-" {
            identity = .standardInput(name: sourceName.map { "name:\($0)" } ?? UUID().uuidString.lowercased())
            size = nil
            return
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw IngestError(.sourceUnreadable, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw IngestError(.sourceUnreadable, "\(path) is not a regular file")
        }
        size = Int(info.st_size)
        identity = .content(head: "")
        identity = .content(head: try headFingerprint())
    }

    /// The hash of the first line (up to and with its newline, at most `headLimit` bytes; blank
    /// lines before it count as part of it).
    private mutating func headFingerprint() throws -> String {
        let input = try openInput()
        defer { input.close() }
        var head = [UInt8](repeating: 0, count: Self.headLimit)
        var filled = 0
        while filled < head.count {
            let count = head.withUnsafeMutableBytes { Foundation.read(input.fd, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 {
                if errno == EINTR { continue }
                throw IngestError(.sourceUnreadable, "reading \(path) failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            filled += count
            if let end = Self.endOfFirstLine(head[..<filled]) {
                filled = end
                break
            }
        }
        // A byte-order mark is not content; a file of blank lines only has an empty head (it
        // stays the same source when events are appended).
        var start = 0
        if filled >= 3, head[0] == 0xEF, head[1] == 0xBB, head[2] == 0xBF { start = 3 }
        let blank: Set<UInt8> = [0x20, 0x09, 0x0D, 0x0A]
        startsBlank = filled > start && blank.contains(head[start])
        if !head[start..<filled].contains(where: { !blank.contains($0) }) { start = filled }
        var hasher = PrefixHasher()
        head.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[start..<filled])) }
        return String(UInt64(bitPattern: hasher.value), radix: 16)
    }

    /// Where the first line with something on it ends (after its newline), if `bytes` holds it:
    /// blank lines before it are part of the head, so files that start with one are still told apart.
    static func endOfFirstLine(_ bytes: ArraySlice<UInt8>) -> Int? {
        var sawText = false
        for index in bytes.indices {
            switch bytes[index] {
            case 0x0A where sawText: return index + 1
            case 0x20, 0x09, 0x0D, 0x0A: continue
            default: sawText = true
            }
        }
        return nil
    }

    // MARK: Reading

    /// Where a run starts: every line before `offset` was handled by an earlier run, whose bytes
    /// before `offset` hashed to `prefixHash` (nil: nothing to verify, at 0).
    public struct ResumePoint: Sendable, Equatable {
        public var offset: Int64
        public var prefixHash: Int64?
        public static let start = ResumePoint(offset: 0, prefixHash: nil)
        public init(offset: Int64, prefixHash: Int64?) {
            self.offset = offset
            self.prefixHash = prefixHash
        }
    }

    /// One line's place in the stream: it starts at `offset`; the next line starts at `next`,
    /// and the bytes before `next` hash to `nextPrefixHash`.
    public struct LinePosition: Sendable {
        public var offset: Int64
        public var next: Int64
        public var nextPrefixHash: Int64
    }

    /// What a read saw.
    public struct ReadTotals: Sendable {
        /// Lines in the whole input, those before the resume point included.
        public var lines: Int64
        /// Lines before the resume point (handled by earlier runs).
        public var linesBeforeStart: Int64
        /// Where reading stopped (the end of the input unless `line` asked to stop) and the hash
        /// of the bytes before it.
        public var end: Int64
        public var endPrefixHash: Int64
    }

    /// The bytes before the resume point differ from what an earlier run stored.
    public struct PrefixChanged: Error, Sendable {
        public var offset: Int64
        /// True when the input ends before `offset`.
        public var truncated: Bool
    }

    /// Reads every line from `start`, after checking that the bytes before it are the ones an
    /// earlier run stored (throws `PrefixChanged` otherwise, before calling `line` at all).
    /// `line` gets each line without its newline (and without a byte-order mark at the start of
    /// the input); a line over `maxLineBytes` goes to `oversized` with its first KiB. `line`
    /// returns false to stop early. `progress` gets bytes read so far.
    public func read(from start: ResumePoint, maxLineBytes: Int,
                     line: (LinePosition, UnsafeRawBufferPointer) -> Bool,
                     oversized: (LinePosition, UnsafeRawBufferPointer) -> Void,
                     progress: (Int) -> Void) throws -> ReadTotals {
        let input = try openInput()
        defer { input.close() }
        let capacity = max(maxLineBytes + 2, 1 << 20) + (1 << 20)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var reader = ChunkReader(input: input, buffer: buffer, capacity: capacity, path: path)

        // The prefix: hashed and counted, never handed over.
        var hasher = PrefixHasher()
        var linesBeforeStart: Int64 = 0
        var lastPrefixByte: UInt8 = 0x0A
        while hasher.length < start.offset {
            if reader.available.isEmpty {
                guard try reader.fill() else { throw PrefixChanged(offset: start.offset, truncated: true) }
                progress(reader.totalRead)
            }
            let chunk = UnsafeRawBufferPointer(rebasing: reader.available.prefix(Int(min(Int64(reader.available.count), start.offset - hasher.length))))
            hasher.update(chunk)
            linesBeforeStart += Int64(countNewlines(chunk))
            lastPrefixByte = chunk[chunk.count - 1]
            reader.consume(chunk.count)
        }
        if let expected = start.prefixHash, hasher.value != expected {
            throw PrefixChanged(offset: start.offset, truncated: false)
        }
        if lastPrefixByte != 0x0A {
            // The earlier run's last line had no newline and was handled as a line; what was
            // appended to it since belongs to that line, not to a new one.
            linesBeforeStart += 1
            try reader.skipToNewline(hashing: &hasher)
        }

        var lines = linesBeforeStart
        /// An over-long line being skipped: where it started and its first KiB.
        var overlong: (offset: Int64, prefix: [UInt8])?
        func finishLine(_ bytes: UnsafeRawBufferPointer, newline: Bool) -> Bool {
            hasher.update(bytes)
            let position = LinePosition(offset: reader.position, next: hasher.length, nextPrefixHash: hasher.value)
            lines += 1
            reader.consume(bytes.count)
            if let skipped = overlong {
                overlong = nil
                skipped.prefix.withUnsafeBytes { oversized(position, $0) }
                return true
            }
            return deliver(position, UnsafeRawBufferPointer(rebasing: bytes.dropLast(newline ? 1 : 0)), maxLineBytes, line, oversized)
        }
        while true {
            let more = try reader.fill()
            progress(reader.totalRead)
            while !reader.available.isEmpty, let newline = memchr(reader.available.baseAddress!, 0x0A, reader.available.count) {
                let end = reader.available.baseAddress!.distance(to: newline) + 1
                guard finishLine(UnsafeRawBufferPointer(rebasing: reader.available.prefix(end)), newline: true) else {
                    return ReadTotals(lines: lines, linesBeforeStart: linesBeforeStart, end: hasher.length, endPrefixHash: hasher.value)
                }
            }
            let pending = reader.available
            if !more {
                // The last line without a newline. From gzip it counts only once gzip has ended
                // well: a truncated archive must not commit its cut-off line.
                try input.finish()
                if !pending.isEmpty || overlong != nil {
                    guard finishLine(pending, newline: false) else { return ReadTotals(lines: lines, linesBeforeStart: linesBeforeStart, end: hasher.length, endPrefixHash: hasher.value) }
                }
                break
            }
            if overlong == nil && pending.count > maxLineBytes + 1 {
                overlong = (reader.position, Array(pending.prefix(1024)))
            }
            if overlong != nil {
                // Keep only its first KiB: hash the rest away, the line ends at a later newline.
                hasher.update(pending)
                reader.consumeSkipped(pending.count)
            }
        }
        return ReadTotals(lines: lines, linesBeforeStart: linesBeforeStart, end: hasher.length, endPrefixHash: hasher.value)
    }

    /// Hands one complete line over (without a trailing CR, and without a byte-order mark when it
    /// starts the input). Returns false when `line` asks to stop.
    private func deliver(_ position: LinePosition, _ raw: UnsafeRawBufferPointer, _ maxLineBytes: Int,
                         _ line: (LinePosition, UnsafeRawBufferPointer) -> Bool,
                         _ oversized: (LinePosition, UnsafeRawBufferPointer) -> Void) -> Bool {
        var bytes = raw
        if position.offset == 0, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            bytes = UnsafeRawBufferPointer(rebasing: bytes[3...])
        }
        if let last = bytes.last, last == 0x0D { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
        if bytes.count > maxLineBytes {
            oversized(position, UnsafeRawBufferPointer(rebasing: bytes.prefix(1024)))
            return true
        }
        return line(position, bytes)
    }

    /// The prefix hash and line count of the input at each of `offsets` (for choosing among
    /// earlier sources with this file's first line). Offsets past the end are missing.
    public func prefixHashes(at offsets: [Int64]) throws -> [Int64: Int64] {
        let input = try openInput()
        defer { input.close() }
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var reader = ChunkReader(input: input, buffer: buffer, capacity: capacity, path: path)
        var hasher = PrefixHasher()
        var result: [Int64: Int64] = [:]
        for target in Set(offsets).sorted() {
            while hasher.length < target {
                if reader.available.isEmpty, try !reader.fill() { return result }
                let take = Int(min(Int64(reader.available.count), target - hasher.length))
                hasher.update(UnsafeRawBufferPointer(rebasing: reader.available.prefix(take)))
                reader.consume(take)
            }
            result[target] = hasher.value
        }
        return result
    }

    private func countNewlines(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard var cursor = bytes.baseAddress else { return 0 }
        let end = cursor + bytes.count
        var count = 0
        while cursor < end, let newline = memchr(cursor, 0x0A, cursor.distance(to: end)) {
            count += 1
            cursor = UnsafeRawPointer(newline) + 1
        }
        return count
    }

    // MARK: Input

    /// A buffer over an input: `available` holds the unhandled bytes, from stream position
    /// `position` on.
    private struct ChunkReader {
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
    private final class Input {
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
