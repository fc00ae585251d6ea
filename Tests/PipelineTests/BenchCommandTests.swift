import Bench
import Foundation
import Migrations
import Postgres
import TestSupport
import Testing

/// `audit-ingest bench`: the real path and a CSV COPY of the same events, in the same run, and
/// nothing left behind.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BenchCommandTests {
    let binary = Shell.executable(named: "audit-ingest")

    private struct Report: Decodable {
        struct Path: Decodable { var wallSeconds: Double; var eventsPerSecond: Double; var ingestCPUSeconds: Double? }
        var events: Int
        var stored: Int
        var deadLettered: Int
        var auditIngest: Path
        var copyBaseline: Path
        var ratio: Double
        var flushP50Milliseconds: Double?
    }

    /// On a given server: two databases made, measured and dropped; every event accounted for.
    @Test func measuresBothPathsOnAGivenServerAndDropsItsDatabases() throws {
        let base = try TestDatabase.baseURL()
        let result = try Shell.run(binary, ["bench", "--events", "3000", "--tenants", "5", "--invalid-ratio", "0.1",
                                            "--database-url", base, "--json"])
        #expect(result.exitCode == 0, "\(result.output.suffix(2000))")
        let json = try #require(result.output.firstIndex(of: "{").map { String(result.output[$0...]) })
        let report = try JSONDecoder().decode(Report.self, from: Data(json.utf8))
        #expect(report.events == 3000 && report.stored + report.deadLettered == 3000 && report.deadLettered > 0)
        #expect(report.auditIngest.wallSeconds > 0 && report.copyBaseline.eventsPerSecond > 0 && report.ratio > 0)
        #expect((report.auditIngest.ingestCPUSeconds ?? 0) > 0 && report.flushP50Milliseconds != nil)
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        #expect(try admin.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'audit_bench_%'").scalar == "0")
    }

    /// The baseline's database is dropped before audit-ingest's run starts: its fresh rows would
    /// draw autovacuum into that measurement, on the same cores and in the server's CPU. Seen
    /// from the progress report that announces the run.
    @Test func theBaselinesDatabaseIsDroppedBeforeAuditIngestsRun() throws {
        let base = try TestDatabase.baseURL()
        var options = BenchOptions()
        options.events = 2000
        options.tenants = 5
        options.databaseURL = base
        options.migrations = try Migration.load(from: TestDatabase.migrationsDirectory)
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        var benchDatabasesAtTheRunsStart: Result<[String], any Error>?
        let report = try Benchmark(options) { status in
            guard status.hasPrefix("audit-ingest") else { return }
            benchDatabasesAtTheRunsStart = Result {
                try admin.execute("SELECT coalesce(string_agg(datname, ','), '') FROM pg_database WHERE datname LIKE 'audit_bench_%'")
                    .scalar?.split(separator: ",").map(String.init) ?? []
            }
        }.run()
        #expect(report.stored == 2000)
        let atStart = try #require(benchDatabasesAtTheRunsStart, "no progress report for audit-ingest's run").get()
        #expect(atStart.allSatisfy { !$0.hasPrefix("audit_bench_copy_") }, "when audit-ingest's run starts: \(atStart)")
    }

    /// Without a server: a throwaway one, removed after; Kafka from the embedded cluster; a plot.
    @Test func runsOnAThrowawayServerFromKafkaAndDrawsThePlot() throws {
        let plot = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID()).svg").path
        defer { try? FileManager.default.removeItem(atPath: plot) }
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()))
        let result = try Shell.run(binary, ["bench", "--events", "2000", "--mode", "consume-static", "--plot", plot],
                                   environment: ["DATABASE_URL": ""])
        #expect(result.exitCode == 0, "\(result.output.suffix(2000))")
        #expect(result.output.contains("2000 events, mode consume-static: 2000 stored"), "\(result.output.suffix(2000))")
        #expect(result.output.contains("ratio (audit-ingest / COPY):"))
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        // Events/s of both paths, then the server's cores in each and audit-ingest's own.
        #expect(svg.hasPrefix("<svg") && svg.components(separatedBy: "<polyline").count == 6, "\(svg.prefix(3000))")
        #expect(svg.contains("audit-ingest</tspan>: 2,000 rows in") && svg.contains("COPY csv, 1 stream</tspan>: 2,000 rows in"))
        #expect(svg.contains("events stored per second") && svg.contains("CPU cores busy") && svg.contains(">0 s</text>"))
        #expect(result.output.contains("where the time went:") && result.output.contains("MiB indexes"), "\(result.output)")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())).subtracting(before)
        #expect(!left.contains { $0.hasPrefix("audit-ingest-bench-") }, "left behind: \(left)")
    }

    @Test func anUnknownModeIsAUsageError() throws {
        let result = try Shell.run(binary, ["bench", "--mode", "fast"])
        #expect(result.exitCode == 64 && result.output.contains("'fast' is invalid for '--mode")
                && result.output.contains("'backfill', 'consume-static' or 'consume-group'"), "\(result.output)")
    }
}

/// The first and last tenth of a run's rate, from the report's samples.
@Suite struct RateTenthsTests {
    @Test func aSteadyRateEndsWhereItStarted() throws {
        let tenths = try #require(RateTenths(samples: (1...20).map { [Double($0) * 0.5, 1000] }))
        #expect(abs(tenths.first - 1000) < 1e-9 && abs(tenths.last - 1000) < 1e-9)
    }

    /// 100 s, the rate falling from 1,000 to 500 events/s in steps of 1 s: the first tenth's mean
    /// is that of its 10 samples, and so is the last's, each interval counted at its own rate.
    @Test func aFallingRateIsAveragedOverEachTenth() throws {
        let samples: [[Double]] = (1...100).map { step -> [Double] in
            let rate: Double = 1000 - Double(step - 1) * 500 / 99
            return [Double(step), rate]
        }
        let tenths = try #require(RateTenths(samples: samples))
        let firstTen: Double = samples[0..<10].map { $0[1] }.reduce(0, +) / 10
        let lastTen: Double = samples[90...].map { $0[1] }.reduce(0, +) / 10
        #expect(abs(tenths.first - firstTen) < 1e-6 && abs(tenths.last - lastTen) < 1e-6)
        #expect(abs(try #require(tenths.lastOverFirst) - lastTen / firstTen) < 1e-9)
    }

    /// An interval that straddles a tenth's edge counts only its part inside: of 9 s to 19 s at
    /// 300/s, the second from 18 s lies in the last tenth (18-20 s), beside 19-20 s at 100/s.
    @Test func anIntervalAcrossTheEdgeCountsOnlyItsPartInside() throws {
        let samples = (1...9).map { [Double($0), 100.0] } + [[19, 300], [20, 100]]
        let tenths = try #require(RateTenths(samples: samples))
        #expect(abs(tenths.first - 100) < 1e-9)
        #expect(abs(tenths.last - 200) < 1e-9, "(300 + 100) events in 2 s")
    }

    /// A consumer's samples go on while it waits to be sure the topic is drained; the run ends at
    /// its wall time, so those idle seconds are not its last tenth.
    @Test func samplesAfterTheEndAreNotPartOfTheRun() throws {
        let samples = (1...10).map { [Double($0), 500.0] } + (11...13).map { [Double($0), 0.0] }
        let tenths = try #require(RateTenths(samples: samples, endingAt: 10))
        #expect(abs(tenths.first - 500) < 1e-9 && abs(tenths.last - 500) < 1e-9)
        #expect(tenths.lastOverFirst == 1)
    }

    /// A consumer still joining its group stores nothing at first: there is no ratio to give.
    @Test func nothingInTheFirstTenthGivesNoRatio() throws {
        let samples = (1...3).map { [Double($0), 0.0] } + (4...20).map { [Double($0), 800.0] }
        let tenths = try #require(RateTenths(samples: samples, endingAt: 20))
        #expect(tenths.first == 0 && abs(tenths.last - 800) < 1e-9)
        #expect(tenths.lastOverFirst == nil)
    }

    @Test func tooFewSamplesGiveNoTenths() {
        #expect(RateTenths(samples: (1...9).map { [Double($0), 1] }) == nil)
        #expect(RateTenths(samples: []) == nil)
        #expect(RateTenths(samples: (1...12).map { [Double($0), 1] }, endingAt: 9) == nil, "9 samples inside the run")
    }
}
