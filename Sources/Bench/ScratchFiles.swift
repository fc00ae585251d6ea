import Foundation

/// A file written through a 1 MiB buffer.
final class BufferedFile {
    private let descriptor: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private(set) var bytesWritten = 0
    private static let capacity = 1 << 20

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BenchError("cannot create \(path): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(Self.capacity)
    }

    func writeLine(_ line: String) throws {
        var line = line
        line.withUTF8 { buffer.append(contentsOf: $0) }
        buffer.append(0x0A)
        if buffer.count >= Self.capacity { try flush() }
    }

    func close() throws {
        try flush()
        guard Foundation.close(descriptor) == 0 else { throw BenchError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    private func flush() throws {
        try buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    throw BenchError("cannot write \(path) (is the temporary directory full?): \(String(cString: strerror(errno)))")
                }
                offset += count
            }
        }
        bytesWritten += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Reads a file in 1 MiB chunks and hands over whole lines (without their newline).
struct LineChunks {
    /// Calls `body` with each chunk of the file, cut after its last newline.
    static func forEachChunk(of path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BenchError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var kept = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + kept, $0.count - kept) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw BenchError("cannot read \(path): \(String(cString: strerror(errno)))") }
            let filled = kept + count
            if count == 0 {
                if filled > 0 { try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<filled])) } }
                return
            }
            let cut = (buffer[0..<filled].lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
            if cut == 0 && filled == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count); kept = filled; continue }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<cut])) }
            buffer.withUnsafeMutableBytes { bytes in
                if cut < filled { memmove(bytes.baseAddress!, bytes.baseAddress! + cut, filled - cut) }
            }
            kept = filled - cut
        }
    }

    /// Calls `body` with each line of the file.
    static func forEachLine(of path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try forEachChunk(of: path) { chunk in
            var start = 0
            while start < chunk.count {
                var end = start
                while end < chunk.count && chunk[end] != 0x0A { end += 1 }
                if end > start { try body(UnsafeRawBufferPointer(rebasing: chunk[start..<end])) }
                start = end + 1
            }
        }
    }
}
