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

    /// What the scan knows about where it is in the document.
    private struct DocumentScan {
        /// Open brackets around the byte being read.
        var depth = 0
        var inString = false
        var escaped = false
        /// The depth whose values are messages: 1 inside a top-level array, 2 inside a member
        /// array of a top-level object (`documentArrays`), 0 for a whole object without one.
        var elementDepth: Int?
        /// The last string read at depth 1 (a member name of the top-level object), and whether
        /// one is being read.
        var name: [UInt8] = []
        var readingName = false
        /// The index (in the reader's available bytes) where the message being read started, and
        /// whether it is a bracketed value (else a scalar, ended by `,` `]` or blank).
        var elementStart: Int?
        var elementIsScalar = false
    }

    /// Reads every element from `start` (see `read`, whose contract this keeps: `element` gets
    /// each element's bytes and position, `oversized` one over `maxElementBytes` with its first
    /// KiB). An element cut off at the end of the input (a document still being written) is held
    /// back. Throws `IngestError.sourceUnreadable` where the bytes are not a JSON document.
    func readDocument(from start: ResumePoint, maxElementBytes: Int,
                      element: (LinePosition, UnsafeRawBufferPointer) throws -> Bool,
                      oversized: (LinePosition, UnsafeRawBufferPointer) -> Void,
                      progress: (Int) -> Void) throws -> ReadTotals {
        let input = try openInput()
        defer { input.close() }
        let capacity = max(maxElementBytes + 2, 1 << 20) + (1 << 20)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var reader = ChunkReader(input: input, buffer: buffer, capacity: capacity, path: path)
        var hasher = PrefixHasher()
        var scan = DocumentScan()
        var elements: Int64 = 0, elementsBeforeStart: Int64 = 0
        var verified = start.offset == 0
        /// An element longer than the limit: where it started and its first KiB (its bytes are
        /// hashed away as they come).
        var overlong: (offset: Int64, prefix: [UInt8])?
        var scanned = 0  // bytes of `reader.available` already scanned

        /// Hashes and drops the first `count` available bytes, checking the stored prefix when
        /// they reach the resume point.
        func consume(_ count: Int) throws {
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

        /// The element that started at `scan.elementStart` ends before available byte `end`.
        func finishElement(end: Int) throws -> Bool {
            let begin = scan.elementStart!
            scan.elementStart = nil
            let offset = overlong?.offset ?? reader.position + Int64(begin)
            try consume(begin)
            let bytes = UnsafeRawBufferPointer(rebasing: reader.available.prefix(end - begin))
            try consume(end - begin)
            let position = LinePosition(offset: offset, next: hasher.length, nextPrefixHash: hasher.value)
            elements += 1
            if offset < start.offset {
                elementsBeforeStart += 1
                overlong = nil
                return true
            }
            if let skipped = overlong {
                overlong = nil
                skipped.prefix.withUnsafeBytes { oversized(position, $0) }
                return true
            }
            return try element(position, bytes)
        }

        func totals(heldBack: Int = 0) -> ReadTotals {
            ReadTotals(lines: elements, linesBeforeStart: elementsBeforeStart, end: hasher.length, endPrefixHash: hasher.value,
                       heldBack: heldBack)
        }

        func malformed(_ index: Int, _ what: String) -> IngestError {
            IngestError(.sourceUnreadable, """
                \(path) is read as one JSON document (it starts with [ or with { on a line of its own), but at byte \
                \(reader.position + Int64(index)) \(what). Check the file, or give it as NDJSON (one event per line).
                """)
        }

        while true {
            let more = try reader.fill()
            progress(reader.totalRead)
            var bytes = reader.available
            var index = scanned
            if hasher.length == 0, reader.position == 0, index == 0, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
            while index < bytes.count {
                let byte = bytes[index]
                if scan.inString {
                    if scan.escaped { scan.escaped = false }
                    else if byte == UInt8(ascii: "\\") { scan.escaped = true }
                    else if byte == UInt8(ascii: "\"") { scan.inString = false; scan.readingName = false }
                    else if scan.readingName, scan.name.count < 64 { scan.name.append(byte) }
                    index += 1
                    continue
                }
                if scan.elementStart != nil, scan.elementIsScalar, scan.depth == scan.elementDepth,
                   [UInt8(ascii: ","), UInt8(ascii: "]"), 0x20, 0x09, 0x0D, 0x0A].contains(byte) {
                    scanned = index
                    guard try finishElement(end: index) else { return totals() }
                    (bytes, index) = (reader.available, scanned)
                    continue
                }
                switch byte {
                case 0x20, 0x09, 0x0D, 0x0A:
                    break
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    if scan.depth == 0 {
                        if byte == UInt8(ascii: "[") { scan.elementDepth = 1 } else { scan.elementDepth = nil }
                        if byte == UInt8(ascii: "{") { scan.elementStart = index; scan.elementIsScalar = false }
                    } else if scan.depth == 1, scan.elementDepth == nil, byte == UInt8(ascii: "["),
                              Self.documentArrays.contains(String(decoding: scan.name, as: UTF8.self)) {
                        // The messages are this member's elements, not the whole object.
                        scan.elementDepth = 2
                        scan.elementStart = nil
                    } else if scan.depth == scan.elementDepth, scan.elementStart == nil {
                        scan.elementStart = index
                        scan.elementIsScalar = false
                    }
                    scan.depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    guard scan.depth > 0 else { throw malformed(index, "a \(Character(Unicode.Scalar(byte))) closes nothing") }
                    scan.depth -= 1
                    if scan.elementStart != nil, !scan.elementIsScalar, scan.depth == (scan.elementDepth ?? 0) {
                        scanned = index + 1
                        guard try finishElement(end: index + 1) else { return totals() }
                        (bytes, index) = (reader.available, scanned)
                        continue
                    }
                    if scan.depth == 0 { scan.elementDepth = nil }
                case UInt8(ascii: "\""):
                    scan.inString = true
                    if scan.depth == 1, scan.elementDepth != 1 { scan.name.removeAll(keepingCapacity: true); scan.readingName = true }
                    if scan.depth == scan.elementDepth, scan.elementStart == nil { scan.elementStart = index; scan.elementIsScalar = true }
                case UInt8(ascii: ","):
                    break
                default:
                    if scan.depth == 0 { throw malformed(index, "there is \(Character(Unicode.Scalar(byte))) outside any [ ] or { }") }
                    if scan.depth == scan.elementDepth, scan.elementStart == nil { scan.elementStart = index; scan.elementIsScalar = true }
                }
                index += 1
            }
            scanned = index
            if scan.elementStart == nil {
                try consume(scanned)  // between elements: nothing to keep
            } else if overlong == nil, scanned - scan.elementStart! > maxElementBytes {
                let begin = scan.elementStart!
                overlong = (reader.position + Int64(begin), Array(reader.available[begin...].prefix(1024)))
            }
            if overlong != nil, let begin = scan.elementStart, scanned > begin {
                // Keep only where it starts: hash the rest away, it ends at a later bracket.
                try consume(begin)
                hasher.update(UnsafeRawBufferPointer(rebasing: reader.available.prefix(scanned)))
                reader.consumeSkipped(scanned)
                scanned = 0
                scan.elementStart = 0
            }
            if !more {
                try input.finish()
                if !verified { throw PrefixChanged(offset: start.offset, truncated: true) }
                // A cut-off element (a document still being written) waits for a later run.
                let pending = scan.elementStart.map { reader.available.count - $0 } ?? 0
                return totals(heldBack: overlong != nil ? Int(hasher.length) - Int(overlong!.offset) : pending)
            }
        }
    }
}
