import Foundation

/// A file that is one JSON document rather than NDJSON: a pretty-printed CloudTrail delivery file
/// (`{"Records": [...]}`), `aws cloudtrail lookup-events` output (`{"Events": [...]}`), a
/// Kubernetes list (`{"items": [...]}`) or a JSON array of events. Each element of that array is
/// a message, at the byte offset where it starts; an object without such an array is one message.
/// Elements are found by a scan of the document's structure (brackets outside strings), so
/// memory holds one element at a time, and a resumed document continues after the last stored
/// element: the scan re-reads the bytes before it (as the prefix check hashes them anyway).
extension FileSource {
    /// Members of a top-level object whose array holds the messages.
    static let documentArrays: Set<String> = ["Records", "Events", "items", "events"]

    /// The reader of one JSON document: a message per element of its array (see `MessageReader`,
    /// whose contract this keeps). An element cut off at the end of the input (a document still
    /// being written) is held back. Throws `IngestError.sourceUnreadable` where the bytes are not a
    /// JSON document.
    final class DocumentReader: MessageReader {
        private let file: FileSource
        private let open: OpenInput
        private var cursor: DocumentCursor
        private var atEnd = false
        private var needsFill = true
        private var totals: ReadTotals?

        init(_ file: FileSource, from start: ResumePoint, maxLineBytes: Int) throws {
            self.file = file
            cursor = DocumentCursor(start: start, maxElementBytes: maxLineBytes)
            open = try OpenInput(file, maxLineBytes: maxLineBytes)
        }

        var bytesRead: Int { open.chunks.totalRead }
        var counted: (messages: Int64, beforeStart: Int64) { (cursor.elements, cursor.elementsBeforeStart) }

        func read(upTo limit: Int, message: (LinePosition, UnsafeRawBufferPointer) -> Void,
                  oversized: (LinePosition, UnsafeRawBufferPointer) -> Void) throws -> ReadTotals? {
            if let totals { return totals }
            // Local copies for the byte loop, written back however it ends.
            var reader = open.chunks
            var cursor = self.cursor
            defer {
                open.chunks = reader
                self.cursor = cursor
            }
            var handed = 0
            while true {
                if needsFill {
                    // The messages handed out point into the buffer, which a fill moves.
                    guard handed == 0 else { return nil }
                    atEnd = try !reader.fill()
                    needsFill = false
                }
                var bytes = reader.available
                var index = cursor.scanned
                if cursor.hasher.length == 0, reader.position == 0, index == 0, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
                while index < bytes.count {
                    switch cursor.scan.step(bytes[index], at: index) {
                    case .next:
                        index += 1
                    case .elementEnds(let end):
                        cursor.scanned = end
                        if try cursor.finishElement(end: end, &reader, message: message, oversized: oversized) { handed += 1 }
                        if handed == limit { return nil }
                        (bytes, index) = (reader.available, cursor.scanned)
                    case .malformed(let what):
                        throw IngestError(.sourceUnreadable, """
                            \(file.path) is read as one JSON document (it starts with [ or with { on a line of its own), but at byte \
                            \(reader.position + Int64(index)) \(what). Check the file, or give it as NDJSON (one event per line).
                            """)
                    }
                }
                cursor.scanned = index
                try cursor.settle(&reader)
                if atEnd {
                    try open.input.finish()
                    let totals = try cursor.totals(&reader)
                    self.totals = totals
                    return totals
                }
                needsFill = true
            }
        }
    }

    /// Where a `DocumentReader` is: the scan, the prefix hash of everything consumed, and the
    /// element being read. `scanned` counts the available bytes already scanned.
    struct DocumentCursor {
        let start: ResumePoint
        let maxElementBytes: Int
        var scan = DocumentScan()
        var hasher = PrefixHasher()
        var scanned = 0
        var elements: Int64 = 0
        var elementsBeforeStart: Int64 = 0
        /// Whether the bytes up to the resume point hashed to what was stored.
        var verified: Bool
        /// An element longer than the limit: where it started and its first KiB (its bytes are
        /// hashed away as they come).
        var overlong: (offset: Int64, prefix: [UInt8])?

        init(start: ResumePoint, maxElementBytes: Int) {
            self.start = start
            self.maxElementBytes = maxElementBytes
            verified = start.offset == 0
        }

        /// Hashes and drops the first `count` available bytes, checking the stored prefix when
        /// they reach the resume point.
        mutating func consume(_ count: Int, _ reader: inout ChunkReader) throws {
            var count = count
            if !verified, hasher.length + Int64(count) >= start.offset {
                let upTo = Int(start.offset - hasher.length)
                hasher.update(UnsafeRawBufferPointer(rebasing: reader.available.prefix(upTo)))
                reader.consume(upTo)
                count -= upTo
                scanned -= upTo
                if let expected = start.prefixHash, hasher.value != expected {
                    throw PrefixChanged(offset: start.offset, truncated: false)
                }
                verified = true
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: reader.available.prefix(count)))
            reader.consume(count)
            scanned -= count
        }

        /// The element that started at `scan.elementStart` ends before available byte `end`:
        /// hands it to `message` (or its first KiB to `oversized`) unless it lies before the resume
        /// point. Returns whether it handed it.
        mutating func finishElement(end: Int, _ reader: inout ChunkReader,
                                    message: (LinePosition, UnsafeRawBufferPointer) -> Void,
                                    oversized: (LinePosition, UnsafeRawBufferPointer) -> Void) throws -> Bool {
            let begin = scan.elementStart!
            scan.elementStart = nil
            let offset = overlong?.offset ?? reader.position + Int64(begin)
            try consume(begin, &reader)
            let bytes = UnsafeRawBufferPointer(rebasing: reader.available.prefix(end - begin))
            try consume(end - begin, &reader)
            let position = LinePosition(offset: offset, next: hasher.length, nextPrefixHash: hasher.value)
            elements += 1
            if offset < start.offset {
                elementsBeforeStart += 1
                overlong = nil
                return false
            }
            if let skipped = overlong {
                overlong = nil
                skipped.prefix.withUnsafeBytes { oversized(position, $0) }
            } else {
                message(position, bytes)
            }
            return true
        }

        /// At the end of the available bytes: drops what lies between elements, and of an
        /// over-long element everything but where it starts.
        mutating func settle(_ reader: inout ChunkReader) throws {
            if scan.elementStart == nil {
                try consume(scanned, &reader)  // between elements: nothing to keep
            } else if overlong == nil, scanned - scan.elementStart! > maxElementBytes {
                let begin = scan.elementStart!
                overlong = (reader.position + Int64(begin), Array(reader.available[begin...].prefix(1024)))
            }
            if overlong != nil, let begin = scan.elementStart, scanned > begin {
                // Keep only where it starts: hash the rest away, it ends at a later bracket.
                try consume(begin, &reader)
                hasher.update(UnsafeRawBufferPointer(rebasing: reader.available.prefix(scanned)))
                reader.consumeSkipped(scanned)
                scanned = 0
                scan.elementStart = 0
            }
        }

        /// The totals at the end of the input. A cut-off element (a document still being
        /// written) waits for a later run.
        func totals(_ reader: inout ChunkReader) throws -> ReadTotals {
            if !verified { throw PrefixChanged(offset: start.offset, truncated: true) }
            let pending = scan.elementStart.map { reader.available.count - $0 } ?? 0
            let heldBack = overlong.map { Int(hasher.length) - Int($0.offset) } ?? pending
            return ReadTotals(lines: elements, linesBeforeStart: elementsBeforeStart, end: hasher.length,
                              endPrefixHash: hasher.value, heldBack: heldBack)
        }
    }
}
