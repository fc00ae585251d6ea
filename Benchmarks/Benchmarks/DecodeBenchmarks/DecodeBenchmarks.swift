import AuditCore
import Benchmark
import Foundation
import Pipeline
import SampleData
import Postgres

/// 10,000 sample events (the generator's realistic mix, ~470 bytes each), decoded per iteration.
let eventCount = 10_000
let lines: [[UInt8]] = SampleEvents(.init(count: eventCount, tenants: 20, months: 6)).map { Array(SampleEvents.ndjson($0).utf8) }
let totalBytes = lines.reduce(0) { $0 + $1.count }

/// What Foundation's JSONDecoder produces from the same bytes: types only, none of our checks.
struct CodableEvent: Decodable {
    struct Metadata: Decodable {
        var request_id: String
        var region: String
        var latency_ms: Int
        var tags: [String]
    }
    var id: UUID
    var tenant_id: UUID
    var user_id: UUID?
    var action: String
    var resource_type: String?
    var resource_id: String?
    var severity: String
    var timestamp: String
    var ip_address: String?
    var user_agent: String?
    var metadata: Metadata?
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 50
    )

    Benchmark("decode+validate+COPY-encode 10k events (audit-ingest)") { benchmark in
        let decoder = EventDecoder()
        var encoder = BinaryCopyEncoder(reservingCapacity: totalBytes * 2)
        benchmark.startMeasurement()
        for line in lines {
            line.withUnsafeBytes { bytes in
                if case .success(let event) = decoder.decode(bytes) {
                    event.appendCopyRow(to: &encoder)
                }
            }
        }
        benchmark.stopMeasurement()
        blackHole(encoder.count)
    }

    Benchmark("decode only 10k events (Foundation JSONDecoder)") { benchmark in
        let decoder = JSONDecoder()
        let data = lines.map { Data($0) }
        var decoded = 0
        benchmark.startMeasurement()
        for line in data {
            if (try? decoder.decode(CodableEvent.self, from: line)) != nil { decoded += 1 }
        }
        benchmark.stopMeasurement()
        blackHole(decoded)
    }
}
