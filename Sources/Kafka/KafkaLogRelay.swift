import CRdKafka
import Logging
import Synchronization

/// Routes librdkafka's own log lines (which it would otherwise print to stderr as
/// `%3|1795796453.575|FAIL|rdkafka#consumer-1| ...`) into swift-log, so a process has one log
/// format. Syslog levels map to swift-log's: 0-3 error, 4 warning, 5-6 info, 7 debug; the
/// facility (`FAIL`, `REQTMOUT`, ...) and the client (`rdkafka#consumer-1`) become metadata.
/// Identical lines within `window` are folded: the first is logged at once, the repeats as one
/// line with their count once the window has passed.
///
/// Every client built from a `KafkaConfiguration` logs through `shared` (librdkafka's log
/// callback has no context of its own: the client's opaque pointer belongs to the consumer's
/// rebalance handling). librdkafka calls `log` on its own threads: the fold state is behind a
/// mutex, lines are written outside it, and nothing here calls back into the engine.
public final class KafkaLogRelay: Sendable {
    /// The relay of every librdkafka client in this process (label `audit-ingest.kafka`).
    public static let shared = KafkaLogRelay(logger: Logger(label: "audit-ingest.kafka"))

    private let logger: Logger
    private let folder: Mutex<LogFolder>

    /// - Parameter window: how long identical lines are counted instead of logged. Default: 5 s.
    public init(logger: Logger, window: Duration = .seconds(5)) {
        self.logger = logger
        folder = Mutex(LogFolder(window: window))
    }

    /// Logs one librdkafka line (`level` is a syslog level), unless it repeats a recent one.
    public func log(level: Int32, facility: String, client: String, message: String,
                    now: ContinuousClock.Instant = .now) {
        let line = LogFolder.Line(level: level, facility: facility, client: client, message: message)
        emit(folder.withLock { $0.admit(line, at: now) })
    }

    /// Logs the counts of repeats whose window has passed. The consumer calls it as it polls, so
    /// a count is not held back until the next line.
    public func flushRepeats(now: ContinuousClock.Instant = .now) {
        emit(folder.withLock { $0.expire(at: now) })
    }

    private func emit(_ emissions: [LogFolder.Emission]) {
        for emission in emissions {
            let line = emission.line
            var metadata: Logger.Metadata = [RelayKey.facility: "\(line.facility)", RelayKey.client: "\(line.client)"]
            if emission.repeats > 0 { metadata[RelayKey.repeated] = "\(emission.repeats)" }
            let message = emission.repeats > 0
                ? "\(line.message) (\(emission.repeats) more identical line(s) in \(emission.seconds) s)"
                : line.message
            logger.log(level: Self.level(syslog: line.level), "\(message)", metadata: metadata)
        }
    }

    /// Syslog severity (0 emergency ... 7 debug) to swift-log.
    public static func level(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    }

    /// Sets librdkafka's log callback on `conf` (before `rd_kafka_new`): lines of the client made
    /// from it go to `shared`.
    static func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
    }
}

/// librdkafka's log callback; runs on any of its threads (see `KafkaLogRelay`).
private func kafkaLogCallback(_ handle: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?,
                              _ text: UnsafePointer<CChar>?) {
    let client = handle.map { String(cString: rd_kafka_name($0)) } ?? "rdkafka"
    KafkaLogRelay.shared.log(level: level, facility: facility.map { String(cString: $0) } ?? "",
                             client: client, message: text.map { String(cString: $0) } ?? "")
}

/// Folds identical log lines (see `KafkaLogRelay`). A value type with no clock of its own: the
/// caller passes the time, so tests drive it with instants of their choosing.
struct LogFolder {
    struct Line: Hashable, Sendable {
        var level: Int32
        var facility: String
        var client: String
        var message: String
    }

    /// A line to log: the line itself (`repeats` 0) or the count of its repeats over `seconds`.
    struct Emission: Equatable {
        var line: Line
        var repeats: Int
        var seconds: Int
    }

    /// Lines tracked at most at once; past it new lines are logged unfolded (a flood of distinct
    /// lines, e.g. `debug=all`, does not grow memory).
    static let capacity = 256

    let window: Duration
    private var recent: [Line: (since: ContinuousClock.Instant, repeats: Int)] = [:]

    init(window: Duration) {
        self.window = window
    }

    /// What to log for `line` arriving at `now`: counts of expired windows, then the line unless
    /// it repeats one logged within the window.
    mutating func admit(_ line: Line, at now: ContinuousClock.Instant) -> [Emission] {
        var emissions = expire(at: now)
        if recent[line] != nil {
            recent[line]!.repeats += 1
            return emissions
        }
        if recent.count < Self.capacity { recent[line] = (now, 0) }
        emissions.append(Emission(line: line, repeats: 0, seconds: 0))
        return emissions
    }

    /// Counts of lines whose window has passed. A line that repeated keeps being folded for
    /// another window (a steady error gives one line per window); one that did not is forgotten.
    mutating func expire(at now: ContinuousClock.Instant) -> [Emission] {
        guard !recent.isEmpty else { return [] }
        var emissions: [Emission] = []
        for (line, entry) in recent where entry.since.duration(to: now) >= window {
            if entry.repeats > 0 {
                let seconds = Int(entry.since.duration(to: now).components.seconds)
                emissions.append(Emission(line: line, repeats: entry.repeats, seconds: seconds))
                recent[line] = (now, 0)
            } else {
                recent[line] = nil
            }
        }
        return emissions.sorted { $0.line.message < $1.line.message }
    }
}

/// The metadata keys of a relayed librdkafka line (this module builds on no other that logs,
/// so they stand here rather than in `LogKey`).
private enum RelayKey {
    static let facility = "facility"
    static let client = "client"
    static let repeated = "repeated"
}
