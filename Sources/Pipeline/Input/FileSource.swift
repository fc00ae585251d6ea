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
package struct FileSource: Sendable {
    /// What kind of source this is, and what names it.
    package enum Identity: Sendable, Equatable {
        /// A file: the hex hash of its first non-blank line and what precedes it (at most
        /// `headLimit` bytes).
        case content(head: String)
        /// Standard input: a name given with `--source-name` (resumes by that name), or a fresh
        /// unique id for each run.
        case standardInput(name: String)
    }

    /// The first line is the file's fingerprint; a first line longer than this counts this much.
    package static let headLimit = 4096

    package let path: String
    package private(set) var identity: Identity
    /// Size on disk, when known (for progress and ETA; compressed size for `.gz`).
    package let size: Int?
    package var isCompressed: Bool { path.hasSuffix(".gz") }
    package var isStandardInput: Bool { path == "-" }

    /// The source name in ingest_offsets and audit_dead_letter before any generation suffix
    /// (`file:<head hash>`, `stdin:<name>` or `stdin:<uuid>`).
    package var baseName: String {
        switch identity {
        case .content(let head): "file:\(head)"
        case .standardInput(let name): "stdin:\(name)"
        }
    }

    /// - Parameter sourceName: for standard input: a name under which runs resume (a pipe that is
    ///   re-sent). Without it every standard-input run is a new source.
    /// The hash an earlier version named this file by (its first line with the line break), when
    /// it differs from the head's: a file stored by such a version continues under that name.
    package internal(set) var legacyHead: String?

    /// `file:<legacy head>`, when there is one (see `legacyHead`).
    package var legacyBaseName: String? { legacyHead.map { "file:\($0)" } }

    /// The source of a file that held blank lines only (its head is empty).
    package static var blankHeadName: String {
        var hasher = PrefixHasher()
        hasher.update(UnsafeRawBufferPointer(start: nil, count: 0))
        return "file:" + String(UInt64(bitPattern: hasher.value), radix: 16)
    }

    /// What to do with a last line that has no newline (from a plain file; from gzip or standard
    /// input the end of the input finishes it). Default: `.hold`.
    package var partialLastLine: PartialLastLine = .hold

    /// A plain file's last line without a newline may be one its writer is still writing (writers
    /// flush in blocks, mid-line).
    package enum PartialLastLine: String, Sendable, CaseIterable {
        /// Take it when it is one whole JSON value (the writer finished it without a newline);
        /// else leave it, uncommitted, for a later run to read once it is finished.
        case hold
        /// Take it as it is, finished or not (a cut-off line is dead-lettered `invalid JSON`).
        case take
    }

    /// NDJSON, or one JSON document (`FileSource+Document`), told from the input's first bytes.
    package enum Layout: String, Sendable { case lines, document }
    package internal(set) var layout: Layout = .lines

    /// True when the input starts with a blank line (it may be a file that held only blank lines
    /// when an earlier run read it).
    package internal(set) var startsBlank = false

    package init(path: String, sourceName: String? = nil) throws {
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

    // MARK: Reading

    /// Where a run starts: every line before `offset` was handled by an earlier run, whose bytes
    /// before `offset` hashed to `prefixHash` (nil: nothing to verify, at 0).
    package struct ResumePoint: Sendable, Equatable {
        package var offset: Int64
        package var prefixHash: Int64?
        package static let start = ResumePoint(offset: 0, prefixHash: nil)
        package init(offset: Int64, prefixHash: Int64?) {
            self.offset = offset
            self.prefixHash = prefixHash
        }
    }

    /// One line's place in the stream: it starts at `offset`; the next line starts at `next`,
    /// and the bytes before `next` hash to `nextPrefixHash`.
    struct LinePosition: Sendable {
        package var offset: Int64
        package var next: Int64
        package var nextPrefixHash: Int64
    }

    /// What a read saw.
    struct ReadTotals: Sendable {
        /// Lines in the whole input, those before the resume point included.
        package var lines: Int64
        /// Lines before the resume point (handled by earlier runs).
        package var linesBeforeStart: Int64
        /// Where reading stopped (the end of the input unless `line` asked to stop, or the start
        /// of a held-back last line) and the hash of the bytes before it.
        package var end: Int64
        package var endPrefixHash: Int64
        /// Bytes of a last line without a newline that was left for a later run (`PartialLastLine.hold`).
        package var heldBack = 0
    }

    /// The hash of the input's bytes before `offset` (a line end), recorded at the first line end
    /// at or past 4 KiB, then at each four times as far (`nextCheckpoint(after:)`).
    package struct Checkpoint: Sendable, Equatable {
        package var offset: Int64
        package var prefixHash: Int64
        package init(offset: Int64, prefixHash: Int64) {
            self.offset = offset
            self.prefixHash = prefixHash
        }
    }

    /// Where the first checkpoint past `offset` is due.
    package static func nextCheckpoint(after offset: Int64) -> Int64 {
        var due: Int64 = 4096
        while due <= offset { due *= 4 }
        return due
    }

    /// The bytes before the resume point differ from what an earlier run stored.
    struct PrefixChanged: Error, Sendable {
        package var offset: Int64
        /// True when the input ends before `offset`.
        package var truncated: Bool
    }

    /// True when `lastLine` (no newline after it) is held back: it comes from a plain file, the
    /// policy is `.hold`, and it is not one whole JSON value (an object is whole only at its
    /// closing brace, so no part of a line being written passes). Blank text is nothing to hold.
    func mayBeUnfinished(_ lastLine: UnsafeRawBufferPointer) -> Bool {
        guard partialLastLine == .hold, !isCompressed, !isStandardInput else { return false }
        let text = lastLine.starts(with: [0xEF, 0xBB, 0xBF]) ? lastLine.dropFirst(3) : lastLine[...]
        guard text.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else { return false }
        return (try? JSONSerialization.jsonObject(with: Data(text))) == nil
    }

    /// The prefix hash and line count of the input at each of `offsets` (for choosing among
    /// earlier sources with this file's first line). Offsets past the end are missing.
    package func prefixHashes(at offsets: [Int64]) throws -> [Int64: Int64] {
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

    func countNewlines(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard var cursor = bytes.baseAddress else { return 0 }
        let end = cursor + bytes.count
        var count = 0
        while cursor < end, let newline = memchr(cursor, 0x0A, cursor.distance(to: end)) {
            count += 1
            cursor = UnsafeRawPointer(newline) + 1
        }
        return count
    }
}
