// swift-tools-version:6.1
import Foundation
import PackageDescription

let package = Package(
    name: "audit-ingest",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "audit-ingest", targets: ["audit-ingest"]),
        .library(name: "AuditIngest", targets: ["AuditCore", "Postgres", "Migrations", "Kafka", "Pipeline", "Operations", "SampleData"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Hummingbird's own transport: the admin server closes a stalled export's channel.
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // Already a dependency of Hummingbird: costs no extra build.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // swift-metrics is already a dependency of Hummingbird; swift-prometheus exports it.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `--config FILE`: TOML through toml++ (its clean debug build adds ~37 s here; Yams would add ~18 s).
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // SHA-256, HMAC (BoringSSL, SHA-NI where the CPU has it): sealed batches, migration
        // checksums, token hashes, cursor MACs; already in the graph through Hummingbird's.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // `stream`: webhooks and Splunk HEC over HTTP(S), on the NIO already in the graph.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // System libraries. Only `Postgres` imports CLibPQ and only `Kafka` imports CRdKafka.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // A header only: the JSON string scan's SSE2 step (AuditCore's JSONCursor).
        .systemLibrary(name: "CJSONScan"),
        // OpenSSL's allocation-free SHA-256 for the Merkle tree's leaves and nodes (Evidence).
        .systemLibrary(name: "CTreeSHA256", providers: [.apt(["libssl-dev"])]),

        .target(name: "AuditCore", dependencies: ["CJSONScan"]),
        // Tamper evidence: leaves, RFC 6962 Merkle trees, batch seals and chains. Pure.
        .target(name: "Evidence", dependencies: ["AuditCore", "CTreeSHA256", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "Postgres",
            dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "Kafka", dependencies: ["CRdKafka", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Pipeline",
            dependencies: [
                "AuditCore", "Evidence", "Postgres", "Kafka", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "Operations", dependencies: [
            "AuditCore", "Evidence", "Pipeline", "Postgres", .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Generated events for `generate`, the demo, tests and benchmarks.
        .target(name: "SampleData", dependencies: ["AuditCore"]),
        // `audit-ingest bench`: the real path against a CSV COPY baseline, in the same run.
        .target(name: "Bench", dependencies: [
            "AuditCore", "Postgres", "Migrations", "Kafka", "Pipeline", "SampleData",
            .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The read side: tenant-scoped search, export, the commit-ordered feed, tenant tokens.
        .target(name: "AuditRead", dependencies: ["AuditCore", "Evidence", "Postgres", .product(name: "Crypto", package: "swift-crypto")]),
        // Streaming out: every tenant's events to webhooks, SIEMs, files and Kafka, in feed order, at least once.
        .target(name: "Streaming", dependencies: [
            "AuditCore", "AuditRead", "Kafka", "Postgres", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(
            name: "AdminServer",
            dependencies: [
                "AuditRead", "Operations", "Pipeline", "Postgres", "Streaming", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // Compiled into the binary: the API's contract (/openapi.json) and the tenant viewer page.
            resources: [.embedInCode("openapi.json"), .embedInCode("viewer.html")]
        ),
        // `--config FILE`: the file's settings as the command-line arguments they stand for.
        .target(name: "ConfigFile", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        .target(
            name: "Migrations",
            dependencies: ["Postgres", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "audit-ingest",
            dependencies: [
                "AuditCore", "Postgres", "Migrations", "Kafka", "Pipeline", "Operations", "AdminServer", "AuditRead",
                "SampleData", "Bench", "ConfigFile", "Streaming",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Two tiers (scripts/test --unit runs the first alone, in parallel, without a database):
        // unit targets (AuditCoreTests, SampleDataTests, *UnitTests) are pure, in process and quick;
        // the others talk to a real PostgreSQL started by scripts/test, and to real child processes.
        .target(name: "TestSupport", dependencies: [
            "Migrations", "Postgres", "SampleData", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/TestSupport"),
        .testTarget(name: "AuditCoreTests", dependencies: ["AuditCore"]),
        .testTarget(name: "SampleDataTests", dependencies: ["AuditCore", "SampleData"]),
        .testTarget(name: "PipelineUnitTests", dependencies: ["AuditCore", "Kafka", "Pipeline"]),
        // The engine's hand-off between threads, end to end against PostgreSQL (also run under TSan).
        .testTarget(name: "PipelineConcurrencyTests", dependencies: ["Pipeline", "Postgres", "SampleData", "TestSupport"]),
        .testTarget(name: "KafkaUnitTests", dependencies: ["Kafka"]),
        .testTarget(name: "EvidenceUnitTests", dependencies: ["AuditCore", "Evidence", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "PostgresUnitTests", dependencies: ["Postgres"]),
        .testTarget(name: "AuditReadUnitTests", dependencies: ["AuditRead"]),
        .testTarget(name: "PipelineTests", dependencies: [
            "Pipeline", "AuditCore", "Bench", "Evidence", "Migrations", "Operations", "Postgres", "SampleData", "TestSupport",
            .product(name: "MetricsTestKit", package: "swift-metrics"),
        ]),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "Pipeline", "Postgres", "SampleData", "TestSupport"]),
        .testTarget(name: "OperationsTests", dependencies: ["Operations", "Postgres", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
        .testTarget(name: "MigrationsTests", dependencies: ["Migrations", "Postgres", "TestSupport"]),
        .testTarget(name: "AuditReadTests", dependencies: ["AdminServer", "AuditRead", "Postgres", "TestSupport"]),
        .testTarget(name: "StreamingTests", dependencies: ["Kafka", "Postgres", "SampleData", "TestSupport", .product(name: "Crypto", package: "swift-crypto")], exclude: ["receiver.py"]),
    ]
)

// `scripts/test` runs the pipeline's thread-crossing tests under ThreadSanitizer. Everything is
// built again for that, so that build keeps only the pipeline and those tests: no HTTP server,
// no command line (minutes less on 2 cores).
if ProcessInfo.processInfo.environment["AUDIT_INGEST_THREAD_SANITIZER_TESTS"] == "1" {
    let kept: Set = ["CLibPQ", "CRdKafka", "CJSONScan", "CTreeSHA256", "AuditCore", "Evidence", "Postgres", "Kafka", "Migrations",
                     "Operations", "Pipeline", "SampleData", "TestSupport", "PipelineUnitTests", "PipelineConcurrencyTests"]
    package.targets.removeAll { !kept.contains($0.name) }
    package.products = []
}
