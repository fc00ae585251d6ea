import Foundation
import Logging
import Synchronization

/// swift-log in the test process: every line goes to one file instead of the test report, so a
/// failing test's own output stands out there. librdkafka's clients in the test process (the
/// embedded cluster, producers) log a line for each connection a test breaks on purpose; those
/// are kept, not shown. The file is `$AUDIT_TEST_LOG` (scripts/test sets it and prints its tail
/// when a run fails), else `audit-ingest-tests-PID.log` in the temporary directory.
///
/// `bootstrap()` must run before the first `Logger` of the process is made (a logger keeps the
/// handler it was made with): the fixtures call it first thing.
public enum TestLogging {
    public static func bootstrap() { _ = installed }

    /// Where this process's log lines go.
    public static var path: String {
        ProcessInfo.processInfo.environment["AUDIT_TEST_LOG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("audit-ingest-tests-\(getpid()).log").path
    }

    private static let installed: Void = {
        let file = LogFile(path: path)
        LoggingSystem.bootstrap { label in FileLogHandler(label: label, file: file) }
    }()
}

/// An append-only file shared by every handler of the process; writes are whole lines.
final class LogFile: Sendable {
    private let descriptor: Mutex<Int32>

    init(path: String) {
        descriptor = Mutex(open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644))
    }

    func write(_ line: String) {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            var line = line
            line.withUTF8 { bytes in _ = Glibc.write(fd, bytes.baseAddress, bytes.count) }
        }
    }
}

struct FileLogHandler: LogHandler {
    let label: String
    let file: LogFile
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let details = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        file.write("\(ISO8601DateFormatter().string(from: Date())) \(event.level) \(label):\(details) \(event.message)\n")
    }
}
