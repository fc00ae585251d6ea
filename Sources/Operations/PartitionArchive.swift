import Crypto
import Foundation
import Postgres

/// One pruned month written to disk so that no row is ever lost:
///
/// - never overwrites: written under a temporary name opened with O_EXCL, then linked to the
///   first free name of `audit_log_YYYY_MM.csv.gz`, `audit_log_YYYY_MM.2.csv.gz`, ... (a month
///   recreated by late events and pruned again gets its own file);
/// - checkable: beside it `FILE.sha256` (for `sha256sum -c`) and `FILE.manifest.json` with the
///   table, row count, bytes and SHA-256;
/// - durable: the archive, its manifests and the directory are fsynced before `write` returns,
///   so the caller may DROP the table.
public struct PartitionArchive: Codable, Sendable {
    /// The archive's path.
    public var file: String
    /// The table archived (`audit_log_YYYY_MM`).
    public var table: String
    public var rows: Int
    public var bytes: Int
    /// SHA-256 of the file, lower-case hex.
    public var sha256: String

    /// Archives `table` (`COPY ... TO`, CSV with a header, gzip) as `month` (`audit_log_YYYY_MM`)
    /// in `directory`. Throws `OperationsError` naming the step that failed; then no archive
    /// with that name exists (a partial file is removed).
    static func write(table: String, month: String, directory: String, on connection: PostgresConnection) throws -> PartitionArchive {
        let partial = directory + "/.\(month).\(UUID().uuidString).partial"
        let gzip = try GzipFile(path: partial)
        let rows: Int
        do {
            rows = try connection.copyOut("COPY \(PostgresConnection.quoteIdentifier(table)) TO STDOUT (FORMAT csv, HEADER)") {
                try gzip.write($0)
            }
            try gzip.finish()
            try fsync(path: partial)
        } catch {
            gzip.abandon()
            throw error
        }
        defer { unlink(partial) }
        let sha256 = try Self.sha256(of: partial)
        let file = try link(partial, toFirstFreeNameFor: month, in: directory)
        var archive = PartitionArchive(file: file, table: month, rows: rows, bytes: 0, sha256: sha256)
        archive.bytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try createExclusively(file + ".sha256", Data("\(sha256)  \((file as NSString).lastPathComponent)\n".utf8))
        try createExclusively(file + ".manifest.json", try encoder.encode(archive))
        try fsync(path: directory)
        return archive
    }

    /// Archives, their checksums and manifests are their owner's only (an umask can only narrow
    /// a mode, never widen it; `open` then applies it exactly).
    static let fileMode: mode_t = 0o600

    /// Links `partial` to `month.csv.gz`, else `month.2.csv.gz`, ...: `link` fails rather than
    /// replace an existing file, so two prunes can never overwrite each other's archive.
    private static func link(_ partial: String, toFirstFreeNameFor month: String, in directory: String) throws -> String {
        for attempt in 1...10_000 {
            let name = attempt == 1 ? "\(month).csv.gz" : "\(month).\(attempt).csv.gz"
            let path = directory + "/" + name
            if Foundation.link(partial, path) == 0 { return path }
            guard errno == EEXIST else {
                throw OperationsError("cannot create \(path): \(String(cString: strerror(errno)))")
            }
        }
        throw OperationsError("no free archive name for \(month) in \(directory)")
    }

    private static func createExclusively(_ path: String, _ data: Data) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, fileMode)
        guard fd >= 0 else { throw OperationsError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, Foundation.fsync(fd) == 0 else {
            throw OperationsError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// fsync of a file or a directory (the directory makes the new names durable).
    static func fsync(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw OperationsError("cannot open \(path) to sync it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard Foundation.fsync(fd) == 0 else { throw OperationsError("fsync of \(path) failed: \(String(cString: strerror(errno)))") }
    }

    /// The SHA-256 of the file, lower-case hex (what `sha256sum` prints), read in 1 MiB chunks.
    static func sha256(of path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw OperationsError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw OperationsError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
