// swift-tools-version:6.1
// Benchmarks of audit-ingest's hot paths (ordo-one/package-benchmark). Run from this folder:
//   swift package benchmark                      # all suites
//   swift package benchmark --target DecodeBenchmarks
import PackageDescription

let package = Package(
    name: "audit-ingest-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "audit-ingest", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "DecodeBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AuditIngest", package: "audit-ingest"),
            ],
            path: "Benchmarks/DecodeBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AuditIngest", package: "audit-ingest"),
            ],
            path: "Benchmarks/RingBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
