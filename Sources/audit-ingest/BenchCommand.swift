import ArgumentParser
import Bench
import Foundation
import Logging
import Migrations
import Pipeline
import Postgres

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure audit-ingest against a plain CSV COPY of the same events, in the same run.",
        discussion: """
            Generates events, runs them through the real path (backfill from a file, or consume \
            from Kafka with static partitions or a new group) into a freshly migrated database, \
            and COPYs the same valid rows as CSV on one connection into another (what psql's \\copy \
            does), month partitions made beforehand. Reports wall time, events/s, the ratio, \
            flush latency, CPU seconds of audit-ingest and of the server's backends (when the server \
            runs on this machine) and peak memory. Without --database-url it starts a throwaway \
            PostgreSQL tuned as production would be (shared_buffers 1GB, max_wal_size 4GB) and \
            removes it after; with one, it creates two databases there and drops them after. \
            Without --brokers, consume modes use the embedded Kafka cluster, which runs in this \
            process: its thread's CPU time is left out of audit-ingest's.
            """
    )

    @Option(help: "Number of events.") var events: Int = 200_000
    @Option(help: "Number of tenants, events spread evenly.") var tenants: Int = 50
    @Option(help: "Months the timestamps cover, ending this month.") var months: Int = 7
    @Option(help: "Fraction (0-1) of deliberately broken events.") var invalidRatio: Double = 0
    @Option(help: ArgumentHelp("Pad each event to about this many bytes (0: as generated, ~400).", valueName: "bytes"))
    var eventBytes: Int = 0
    @Option(help: "backfill, consume-static or consume-group.") var mode: BenchOptions.Mode = .backfill
    @Option(help: "A server to measure on (it needs CREATE DATABASE). Default: a throwaway local one.")
    var databaseURL: String?
    @Option(help: "Kafka bootstrap servers for consume modes. Default: the embedded cluster.") var brokers: String?
    @Option(help: "Flusher shards.") var shards: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Rows per flush transaction.") var batchSize: Int = 10_000
    @Option(help: "Directory of the schema migrations (default: as for migrate).") var migrationsDir: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: ArgumentHelp("Also draw events/s over time for both paths into this SVG file.", valueName: "file"))
    var plot: String?

    func validate() throws {
        guard events > 0, tenants > 0, months > 0 else { throw ValidationError("--events, --tenants and --months must be positive") }
        guard (0...1).contains(invalidRatio) else { throw ValidationError("--invalid-ratio must be between 0 and 1") }
    }

    func run() throws {
        guard let directory = migrationsDir.map({ URL(fileURLWithPath: $0) }) ?? Migration.defaultDirectory() else {
            throw ValidationError("cannot find schemas/migrations: pass --migrations-dir or set AUDIT_INGEST_MIGRATIONS")
        }
        var options = BenchOptions()
        options.events = events
        options.tenants = tenants
        options.months = months
        options.invalidRatio = invalidRatio
        options.eventBytes = eventBytes
        options.mode = mode
        options.databaseURL = databaseURL
        options.brokers = brokers
        options.engine = IngestConfiguration(shards: shards, batchSize: batchSize)
        options.migrations = try Migration.load(from: directory)
        let interactive = isatty(STDERR_FILENO) == 1
        var logger = Logger(label: "audit-ingest.bench")
        logger.logLevel = ProcessInfo.processInfo.environment["AUDIT_BENCH_LOG"] == nil ? .warning : .info
        let report = try Benchmark(options, logger: logger) { step in
            if interactive { FileHandle.standardError.write(Data("bench: \(step)...\n".utf8)) }
        }.run()
        if let plot { try BenchPlot(report).svg().write(toFile: plot, atomically: true, encoding: .utf8) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
    }
}

extension BenchReport {
    var table: String {
        func seconds(_ value: Double?) -> String { value.map { String(format: "%.2f s", $0) } ?? "n/a" }
        func row(_ name: String, _ path: PathResult) -> String {
            [name.padding(toLength: 22, withPad: " ", startingAt: 0), String(format: "%8.2f s", path.wallSeconds),
             String(format: "%10.0f", path.eventsPerSecond), seconds(path.ingestCPUSeconds).leftPadded(12),
             seconds(path.serverCPUSeconds).leftPadded(12)].joined(separator: "  ")
        }
        let perEvent = auditIngest.ingestCPUSeconds.map { String(format: "%.2f µs", $0 / Double(max(events, 1)) * 1e6) } ?? "n/a"
        return """
            \(events) events, mode \(mode): \(stored) stored, \(deadLettered) dead-lettered
            path                        wall    events/s   ingest CPU   server CPU
            \(row("audit-ingest", auditIngest))
            \(row("COPY csv (1 stream)", copyBaseline))
            ratio (audit-ingest / COPY): \(String(format: "%.2fx", ratio))
            flush latency p50 / p99: \(flushP50Milliseconds.map { String(format: "%.0f ms", $0) } ?? "n/a") / \
            \(flushP99Milliseconds.map { String(format: "%.0f ms", $0) } ?? "n/a")
            audit-ingest CPU per event: \(perEvent); peak memory: \(String(format: "%.0f MiB", maxResidentMiB))
            events/s in the first and the last tenth of each run:
            \(sustained("audit-ingest", auditIngestTenths))
            \(sustained("COPY csv", copyBaselineTenths))
            where the time went:
            \(whereTheTimeWent.joined(separator: "\n"))
            """
    }

    private func sustained(_ name: String, _ tenths: RateTenths?) -> String {
        let figures = tenths.map { tenths in
            String(format: "%.0f -> %.0f ", tenths.first, tenths.last)
                + (tenths.lastOverFirst.map { String(format: "(%.0f%%)", $0 * 100) } ?? "(no ratio: nothing stored in the first tenth)")
        }
        return "  " + name.padding(toLength: 14, withPad: " ", startingAt: 0) + (figures ?? "n/a (too short a run)")
    }

    /// One line per path: how busy the server and audit-ingest kept the cores, what the server wrote
    /// and what it stored; then the time spent before the clocks started.
    var whereTheTimeWent: [String] {
        func line(_ name: String, _ path: PathResult) -> String {
            var parts: [String] = []
            let wall = max(path.wallSeconds, 1e-9)
            if let server = path.serverCPUSeconds { parts.append(String(format: "server %.2f cores", server / wall)) }
            if let ingest = path.ingestCPUSeconds { parts.append(String(format: "audit-ingest %.2f cores", ingest / wall)) }
            if let wal = path.walMiB { parts.append(String(format: "WAL %.0f MiB (%.0f bytes/row)", wal, wal * 1_048_576 / Double(max(stored, 1)))) }
            if let checkpoints = path.checkpoints { parts.append("\(checkpoints) checkpoint\(checkpoints == 1 ? "" : "s")") }
            if let table = path.tableMiB, let indexes = path.indexMiB {
                parts.append(String(format: "stored %.0f MiB heap + %.0f MiB indexes", table, indexes))
            }
            return "  " + name.padding(toLength: 14, withPad: " ", startingAt: 0) + parts.joined(separator: ", ")
        }
        return [line("audit-ingest", auditIngest), line("COPY csv", copyBaseline),
                "  " + "before".padding(toLength: 14, withPad: " ", startingAt: 0)
                    + String(format: "%.1f s", preparationSeconds) + " generating" + (mode == "backfill" ? "" : " and producing")
                    + " (not measured)"]
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
