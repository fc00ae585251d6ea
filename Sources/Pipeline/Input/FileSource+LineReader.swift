import AuditCore
import Foundation

extension FileSource {
    /// Reads a file source's messages a step at a time, for a source the engine pulls: each
    /// `read` hands over up to `limit` messages whose bytes stay valid until the next call (the
    /// buffer moves only when it is refilled, at the start of a call).
    protocol MessageReader: AnyObject {
        /// Bytes read of the input so far (compressed bytes for .gz).
        var bytesRead: Int { get }
        /// Messages so far, those before the resume point included, and those before it.
        var counted: (messages: Int64, beforeStart: Int64) { get }

        /// Up to `limit` messages: `message` gets each one's position and bytes (without its
        /// newline, a trailing CR or a byte-order mark at the start of the input), `oversized`
        /// one over the limit with its first KiB. Returns the totals once the input has ended,
        /// nil while more may follow. Throws `PrefixChanged` (before any message) when the bytes
        /// before the resume point are not the ones an earlier run stored.
        func read(upTo limit: Int, message: (LinePosition, UnsafeRawBufferPointer) -> Void,
                  oversized: (LinePosition, UnsafeRawBufferPointer) -> Void) throws -> ReadTotals?
    }

    /// An open input and the buffer it is read into; closed and freed with it. A reader copies
    /// `chunks` into a local for a call (no exclusivity checks per line) and stores it back.
    final class OpenInput {
        let input: Input
        private let buffer: UnsafeMutableRawPointer
        var chunks: ChunkReader

        init(_ file: FileSource, maxLineBytes: Int) throws {
            input = try file.openInput()
            let capacity = max(maxLineBytes + 2, 1 << 20) + (1 << 20)
            buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            chunks = ChunkReader(input: input, buffer: buffer, capacity: capacity, path: file.path)
        }

        deinit {
            input.close()
            buffer.deallocate()
        }
    }

    /// The reader of NDJSON: a message per line.
    final class LineReader: MessageReader {
        private let file: FileSource
        private let start: ResumePoint
        private let maxLineBytes: Int
        private let open: OpenInput
        private var hasher = PrefixHasher()
        /// The end of the input was read (a fill returned false).
        private var atEnd = false
        /// The bytes available were all scanned: the next call reads more first.
        private var needsFill = true
        private var verified = false
        private var lines: Int64 = 0
        private var linesBeforeStart: Int64 = 0
        /// An over-long line being skipped: where it started and its first KiB.
        private var overlong: (offset: Int64, prefix: [UInt8])?
        private var totals: ReadTotals?

        init(_ file: FileSource, from start: ResumePoint, maxLineBytes: Int) throws {
            self.file = file
            self.start = start
            self.maxLineBytes = maxLineBytes
            open = try OpenInput(file, maxLineBytes: maxLineBytes)
        }

        var bytesRead: Int { open.chunks.totalRead }
        var counted: (messages: Int64, beforeStart: Int64) { (lines, linesBeforeStart) }

        func read(upTo limit: Int, message: (LinePosition, UnsafeRawBufferPointer) -> Void,
                  oversized: (LinePosition, UnsafeRawBufferPointer) -> Void) throws -> ReadTotals? {
            if let totals { return totals }
            var reader = open.chunks
            var hasher = self.hasher
            defer {
                open.chunks = reader
                self.hasher = hasher
            }
            if !verified {
                try verifyPrefix(&reader, &hasher)
                verified = true
            }
            var handed = 0
            while true {
                if needsFill {
                    // The messages handed out point into the buffer, which a fill moves.
                    guard handed == 0 else { return nil }
                    atEnd = try !reader.fill()
                    needsFill = false
                }
                while handed < limit, !reader.available.isEmpty,
                      let newline = memchr(reader.available.baseAddress!, 0x0A, reader.available.count) {
                    let end = reader.available.baseAddress!.distance(to: newline) + 1
                    finishLine(UnsafeRawBufferPointer(rebasing: reader.available.prefix(end)), newline: true, &reader, &hasher,
                               message: message, oversized: oversized)
                    handed += 1
                }
                if handed == limit { return nil }
                let pending = reader.available
                if atEnd {
                    // The last line without a newline. From gzip it counts only once gzip has ended
                    // well: a truncated archive must not commit its cut-off line.
                    try open.input.finish()
                    if overlong == nil, !pending.isEmpty, file.mayBeUnfinished(pending) {
                        return finish(heldBack: pending.count, hasher)
                    }
                    if !pending.isEmpty || overlong != nil {
                        finishLine(pending, newline: false, &reader, &hasher, message: message, oversized: oversized)
                    }
                    return finish(heldBack: 0, hasher)
                }
                if overlong == nil && pending.count > maxLineBytes + 1 {
                    overlong = (reader.position, Array(pending.prefix(1024)))
                }
                if overlong != nil {
                    // Keep only its first KiB: hash the rest away, the line ends at a later newline.
                    hasher.update(pending)
                    reader.consumeSkipped(pending.count)
                }
                needsFill = true
            }
        }

        /// Hands the line `bytes` (the first available ones, ending with its newline when `newline`)
        /// and consumes it: to `message`, or its first KiB to `oversized` when it is too long.
        @inline(__always)
        private func finishLine(_ bytes: UnsafeRawBufferPointer, newline: Bool, _ reader: inout ChunkReader,
                                _ hasher: inout PrefixHasher, message: (LinePosition, UnsafeRawBufferPointer) -> Void,
                                oversized: (LinePosition, UnsafeRawBufferPointer) -> Void) {
            hasher.update(bytes)
            let position = LinePosition(offset: reader.position, next: hasher.length, nextPrefixHash: hasher.value)
            lines += 1
            reader.consume(bytes.count)
            if let skipped = overlong {
                overlong = nil
                skipped.prefix.withUnsafeBytes { oversized(position, $0) }
                return
            }
            let line = file.trimmed(UnsafeRawBufferPointer(rebasing: bytes.dropLast(newline ? 1 : 0)), at: position.offset)
            if line.count > maxLineBytes {
                oversized(position, UnsafeRawBufferPointer(rebasing: line.prefix(1024)))
            } else {
                message(position, line)
            }
        }

        private func finish(heldBack: Int, _ hasher: PrefixHasher) -> ReadTotals {
            let totals = ReadTotals(lines: lines, linesBeforeStart: linesBeforeStart, end: hasher.length, endPrefixHash: hasher.value,
                                    heldBack: heldBack)
            self.totals = totals
            return totals
        }

        /// The prefix: hashed and counted, never handed over.
        private func verifyPrefix(_ reader: inout ChunkReader, _ hasher: inout PrefixHasher) throws {
            var lastPrefixByte: UInt8 = 0x0A
            while hasher.length < start.offset {
                if reader.available.isEmpty {
                    guard try reader.fill() else { throw PrefixChanged(offset: start.offset, truncated: true) }
                }
                let chunk = UnsafeRawBufferPointer(
                    rebasing: reader.available.prefix(Int(min(Int64(reader.available.count), start.offset - hasher.length))))
                hasher.update(chunk)
                linesBeforeStart += Int64(file.countNewlines(chunk))
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
            lines = linesBeforeStart
            // What the prefix left in the buffer is scanned before reading more.
            needsFill = reader.available.isEmpty
        }
    }

    /// A reader of `from` on: lines, or a document's elements (`layout`).
    func reader(from start: ResumePoint, maxLineBytes: Int) throws -> any MessageReader {
        layout == .document
            ? try DocumentReader(self, from: start, maxLineBytes: maxLineBytes)
            : try LineReader(self, from: start, maxLineBytes: maxLineBytes)
    }

    /// A line without a trailing CR, and without a byte-order mark when it starts the input.
    func trimmed(_ raw: UnsafeRawBufferPointer, at offset: Int64) -> UnsafeRawBufferPointer {
        var bytes = raw
        if offset == 0, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            bytes = UnsafeRawBufferPointer(rebasing: bytes[3...])
        }
        if let last = bytes.last, last == 0x0D { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
        return bytes
    }
}
