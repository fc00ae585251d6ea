extension FileSource {
    /// What the scan knows about where it is in the document.
    struct DocumentScan {
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

        enum Step {
            /// Go on with the next byte.
            case next
            /// The element being read ends before byte `at` (a bracketed one includes its closing
            /// bracket; a scalar's delimiter is scanned again after it).
            case elementEnds(at: Int)
            /// The bytes are not JSON: what is wrong at this byte.
            case malformed(String)
        }

        /// Scans `byte`, the available byte at `index`.
        mutating func step(_ byte: UInt8, at index: Int) -> Step {
            if inString {
                if escaped { escaped = false }
                else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false; readingName = false }
                else if readingName, name.count < 64 { name.append(byte) }
                return .next
            }
            if elementStart != nil, elementIsScalar, depth == elementDepth,
               [UInt8(ascii: ","), UInt8(ascii: "]"), 0x20, 0x09, 0x0D, 0x0A].contains(byte) {
                return .elementEnds(at: index)
            }
            switch byte {
            case 0x20, 0x09, 0x0D, 0x0A, UInt8(ascii: ","):
                break
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                open(byte, at: index)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard depth > 0 else { return .malformed("a \(Character(Unicode.Scalar(byte))) closes nothing") }
                depth -= 1
                if elementStart != nil, !elementIsScalar, depth == (elementDepth ?? 0) { return .elementEnds(at: index + 1) }
                if depth == 0 { elementDepth = nil }
            case UInt8(ascii: "\""):
                inString = true
                if depth == 1, elementDepth != 1 { name.removeAll(keepingCapacity: true); readingName = true }
                if depth == elementDepth, elementStart == nil { elementStart = index; elementIsScalar = true }
            default:
                if depth == 0 { return .malformed("there is \(Character(Unicode.Scalar(byte))) outside any [ ] or { }") }
                if depth == elementDepth, elementStart == nil { elementStart = index; elementIsScalar = true }
            }
            return .next
        }

        private mutating func open(_ bracket: UInt8, at index: Int) {
            if depth == 0 {
                elementDepth = bracket == UInt8(ascii: "[") ? 1 : nil
                if bracket == UInt8(ascii: "{") { elementStart = index; elementIsScalar = false }
            } else if depth == 1, elementDepth == nil, bracket == UInt8(ascii: "["),
                      FileSource.documentArrays.contains(String(decoding: name, as: UTF8.self)) {
                // The messages are this member's elements, not the whole object.
                elementDepth = 2
                elementStart = nil
            } else if depth == elementDepth, elementStart == nil {
                elementStart = index
                elementIsScalar = false
            }
            depth += 1
        }
    }
}
