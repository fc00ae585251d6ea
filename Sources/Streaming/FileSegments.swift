import Foundation

/// A file destination's directory: the open segment `NAME.START.ndjson.part` that batches are
/// appended to (START: when its first batch was written, in microseconds since 1970), and the
/// finished `NAME-20261207T031500.123456Z.ndjson` files it becomes, whose names sort in the
/// order of their events.
///
/// - A batch is written whole and fsynced before the caller moves the cursor: after a crash the
///   segment holds every batch whose cursor moved, and perhaps the next one again (at least once;
///   its events carry their ids).
/// - A crash in the middle of a write leaves a torn last line. It is cut off when the segment is
///   next opened, so no reader ever sees a partial event. That batch is sent again, since its
///   cursor had not moved.
/// - A segment is finished once it holds `rotateBytes` or its first batch is `rotateSeconds`
///   old. It is renamed (atomic, and the directory fsynced) to a name that sorts by time and is
///   never reused. Readers take `*.ndjson` and leave `*.part` alone.
///
/// One streamer writes a destination at a time (the delivery lock). Streamers on several hosts
/// each write their own directory unless it is shared.
final class FileSegments: @unchecked Sendable {  // used by its destination's worker only, one call at a time
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    let directory: String
    let name: String
    let rotateBytes: Int64
    let rotateSeconds: Int

    private var descriptor: Int32 = -1
    private var path = ""
    /// Microseconds since 1970.
    private var started: Int64 = 0
    private var size: Int64 = 0
    /// A previous run's segment is looked for once: afterwards only this object writes here.
    private var recovered = false

    init(url: String, name: String, rotateBytes: Int64, rotateSeconds: Int) throws(Failed) {
        guard url.hasPrefix("file://"), let directory = URL(string: url)?.path, !directory.isEmpty else {
            throw Failed(description: "\(url): a file destination's url is file:///DIRECTORY")
        }
        self.directory = directory
        self.name = name
        self.rotateBytes = rotateBytes
        self.rotateSeconds = rotateSeconds
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Appends `bytes` (whole NDJSON lines) and fsyncs; then finishes the segment if it is due.
    func append(_ bytes: [UInt8], now: Date = Date()) throws(Failed) {
        try openSegment(now: now)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let reason = Self.errorText()
                // Leave no partial batch: cut back to where this batch began.
                _ = ftruncate(descriptor, off_t(size))
                throw Failed(description: "cannot write \(path): \(reason)")
            }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw Failed(description: "cannot fsync \(path): \(Self.errorText())") }
        size += Int64(bytes.count)
        try finishIfDue(now: now)
    }

    /// Finishes a non-empty segment that is old enough or full (also called while idle).
    func finishIfDue(now: Date = Date()) throws(Failed) {
        if descriptor < 0 { try recoverSegment() }
        guard descriptor >= 0, size > 0,
              size >= rotateBytes || Self.micros(now) - started >= Int64(rotateSeconds) * 1_000_000 else { return }
        close(descriptor)
        descriptor = -1
        let stamp = Self.stamp(started)
        var target = "\(directory)/\(name)-\(stamp).ndjson"
        var attempt = 1
        while access(target, F_OK) == 0 {
            target = "\(directory)/\(name)-\(stamp)-\(attempt).ndjson"
            attempt += 1
        }
        guard rename(path, target) == 0 else { throw Failed(description: "cannot rename \(path) to \(target): \(Self.errorText())") }
        try syncDirectory()
    }

    // MARK: The open segment

    private func openSegment(now: Date) throws(Failed) {
        if descriptor >= 0 { return }
        try recoverSegment()
        if descriptor >= 0 { return }
        started = Self.micros(now)
        path = "\(directory)/\(name).\(started).ndjson.part"
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw Failed(description: "cannot create \(path): \(Self.errorText()) (does the directory exist, writable by the streamer?)")
        }
        size = 0
        try syncDirectory()
    }

    /// Opens the segment a previous run left (there is at most one), cut back to its last whole line.
    private func recoverSegment() throws(Failed) {
        if recovered { return }
        let prefix = name + ".", suffix = ".ndjson.part"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw Failed(description: "cannot read the directory \(directory): \(Self.errorText())")
        }
        recovered = true
        guard let left = entries.filter({ $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }).sorted().first,
              let start = Int64(left.dropFirst(prefix.count).dropLast(suffix.count)) else { return }
        let leftPath = directory + "/" + left
        let fd = open(leftPath, O_RDWR | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw Failed(description: "cannot open \(leftPath): \(Self.errorText())") }
        let whole = Self.wholeLinesLength(fd)
        guard ftruncate(fd, off_t(whole)) == 0, fsync(fd) == 0 else {
            close(fd)
            throw Failed(description: "cannot cut the torn end of \(leftPath): \(Self.errorText())")
        }
        descriptor = fd
        path = leftPath
        started = start
        size = whole
    }

    /// The length of the file up to and including its last line break.
    private static func wholeLinesLength(_ fd: Int32) -> Int64 {
        var end = Int64(lseek(fd, 0, SEEK_END))
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while end > 0 {
            let start = max(0, end - Int64(buffer.count))
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(end - start), off_t(start)) }
            guard count > 0 else { return 0 }
            if let last = buffer[..<count].lastIndex(of: UInt8(ascii: "\n")) { return start + Int64(last) + 1 }
            end = start
        }
        return 0
    }

    private func syncDirectory() throws(Failed) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failed(description: "cannot open the directory \(directory): \(Self.errorText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failed(description: "cannot fsync the directory \(directory): \(Self.errorText())") }
    }

    /// `20261207T031500.123456Z`: finished names sort by the time their segment began (a
    /// segment begins only after the one before it was finished).
    static func stamp(_ micros: Int64) -> String {
        let (seconds, fraction) = micros.quotientAndRemainder(dividingBy: 1_000_000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02d.%06dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int32(fraction))
    }

    static func micros(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 * 1_000_000) }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    /// Whether the streamer could write the directory (for `stream destination test`).
    static func checkWritable(url: String) throws(Failed) {
        let segments = try FileSegments(url: url, name: "probe", rotateBytes: 1024, rotateSeconds: 1)
        let probe = "\(segments.directory)/.audit-ingest-probe-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failed(description: "cannot write in \(segments.directory): \(errorText())") }
        close(fd)
        unlink(probe)
    }
}
