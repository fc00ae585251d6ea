/// Tuples of binary COPY output, one at a time, as views of their fields.
public enum BinaryCopyTuples {
    public struct Fields {
        public let base: UnsafeRawBufferPointer
        /// Each field's start (its length word) and value length (-1: NULL).
        public fileprivate(set) var starts: [(offset: Int, length: Int)]

        public func int64(_ index: Int) -> Int64 {
            guard starts[index].length == 8 else { return 0 }
            return Int64(bigEndian: base.loadUnaligned(fromByteOffset: starts[index].offset + 4, as: Int64.self))
        }

        /// Every field, length words included.
        public var all: UnsafeRawBufferPointer {
            guard let first = starts.first, let last = starts.last else { return UnsafeRawBufferPointer(rebasing: base[0..<0]) }
            return UnsafeRawBufferPointer(rebasing: base[first.offset..<(last.offset + 4 + max(0, last.length))])
        }

        /// The fields after `index`, length words included.
        public func bytes(after index: Int) -> UnsafeRawBufferPointer {
            let start = starts[index].offset + 4 + max(0, starts[index].length)
            let end = starts.last.map { $0.offset + 4 + max(0, $0.length) } ?? start
            return UnsafeRawBufferPointer(rebasing: base[start..<end])
        }
    }

    /// Calls `body` for each tuple in `chunk` (PostgreSQL sends whole tuples per CopyData
    /// message); stops at the trailer.
    public static func forEach(in chunk: UnsafeRawBufferPointer, _ body: (Fields) throws -> Void) throws {
        var offset = 0
        var fields = Fields(base: chunk, starts: [])
        while offset + 2 <= chunk.count {
            let count = Int(Int16(bigEndian: chunk.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
            offset += 2
            if count < 0 { return }
            fields.starts.removeAll(keepingCapacity: true)
            for _ in 0..<count {
                guard offset + 4 <= chunk.count else { throw PostgresError(code: .unexpectedResult, message: "binary COPY: a tuple was cut off") }
                let length = Int(Int32(bigEndian: chunk.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                fields.starts.append((offset, length))
                offset += 4 + max(0, length)
            }
            guard offset <= chunk.count else { throw PostgresError(code: .unexpectedResult, message: "binary COPY: a tuple was cut off") }
            try body(fields)
        }
    }
}
