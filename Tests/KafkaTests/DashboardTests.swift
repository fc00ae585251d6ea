import Foundation
import TestSupport
import Testing

/// `ops/grafana/audit-ingest.json` and `ops/prometheus/alerts.yml` query only what `/metrics`
/// really exports: every metric name in their PromQL must be in a scrape of a running `consume`
/// that has stored and dead-lettered events. The rules also pass promtool.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DashboardTests {
    static let dashboard = TestDatabase.repositoryRoot.appendingPathComponent("ops/grafana/audit-ingest.json")
    static let rules = TestDatabase.repositoryRoot.appendingPathComponent("ops/prometheus/alerts.yml")
    static let ruleTests = TestDatabase.repositoryRoot.appendingPathComponent("ops/prometheus/alerts.test.yml")

    @Test func everyMetricTheDashboardAndTheRulesQueryIsInARealScrape() throws {
        let (queries, templateMetrics) = try Self.dashboardQueries()
        let expressions = queries + (try Self.ruleExpressions())
        let used = expressions.reduce(into: Set(templateMetrics)) { $0.formUnion(PromQL.metricNames(in: $1)) }
        #expect(queries.count >= 20 && used.count >= 20, "\(queries.count) queries, \(used.sorted())")

        let fixture = try KafkaFixture(partitions: 2)
        try fixture.produce(events: 2000, invalidRatio: 0.05)
        // A stream destination, so that its lag and state are exported (no streamer delivers to it).
        let destination = try Shell.run(Shell.executable(named: "audit-ingest"), [
            "stream", "destination", "create", "--name", "dashboard", "--url", "http://127.0.0.1:9/", "--from", "beginning",
            "--database-url", fixture.database.url])
        #expect(destination.exitCode == 0, "\(destination.output)")
        let admin = try AdminPort()
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       fixture.consumeArguments(exitWhenIdle: nil) + admin.arguments)
        #expect(try fixture.waitForStored(atLeast: fixture.produced))
        // The pipeline's status is published about once a second: scrape until everything shows.
        var missing = used
        var scrape = ""
        waitUntil(timeout: .seconds(30)) {
            scrape = admin.get("/metrics")?.body ?? ""
            missing = used.subtracting(Self.sampleNames(in: scrape))
            return missing.isEmpty
        }
        consumer.signal(SIGTERM)
        #expect(consumer.wait().exitCode == 0)
        #expect(missing.isEmpty, "queried but not exported: \(missing.sorted())\n\(scrape)")
    }

    @Test func promtoolAcceptsAndUnitTestsTheRules() throws {
        let promtool = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: promtool) else {
            Issue.record("promtool is missing: run scripts/install-system-packages (Debian package prometheus)")
            return
        }
        let check = try Shell.run(promtool, ["check", "rules", Self.rules.path])
        #expect(check.exitCode == 0, "\(check.output)")
        let unitTests = try Shell.run(promtool, ["test", "rules", Self.ruleTests.path])
        #expect(unitTests.exitCode == 0, "\(unitTests.output)")
    }

    @Test func metricNamesAreTakenFromPromQLWithoutFunctionsLabelsOrVariables() {
        let expression = """
            histogram_quantile(0.99, sum by (instance, le) (rate(flush_bucket{instance=~"$instance", a="x{y}"}[$__rate_interval])))
            / ignoring(shard) group_left max without (job) (ring_capacity offset 5m) > 1e3 and on (instance) lag_seconds
            """
        #expect(PromQL.metricNames(in: expression) == ["flush_bucket", "ring_capacity", "lag_seconds"])
    }

    /// Every `expr` of the dashboard's panels, and the metrics its template variables query.
    static func dashboardQueries() throws -> (expressions: [String], templateMetrics: [String]) {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dashboard))
        var expressions: [String] = []
        var templateMetrics: [String] = []
        func walk(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, child) in object {
                    if key == "expr", let text = child as? String { expressions.append(text) }
                    // label_values(metric, label): only the first argument is a metric.
                    if key == "definition", let text = child as? String,
                       let match = text.firstMatch(of: /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/) {
                        templateMetrics.append(String(match.output.1))
                    }
                    walk(child)
                }
            } else if let array = value as? [Any] {
                array.forEach(walk)
            }
        }
        walk(json)
        return (expressions, templateMetrics)
    }

    /// Every `expr:` of the rules file, single-line or a folded/literal block (`expr: >`).
    static func ruleExpressions() throws -> [String] {
        let lines = try String(contentsOf: rules, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var expressions: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            index += 1
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("expr:") else { continue }
            let rest = trimmed.dropFirst("expr:".count).trimmingCharacters(in: .whitespaces)
            guard [">", "|", ">-", "|-"].contains(rest) else {
                expressions.append(rest)
                continue
            }
            let indent = line.count - trimmed.count
            var block: [String] = []
            while index < lines.count, lines[index].prefix(while: { $0 == " " }).count > indent || lines[index].isEmpty {
                block.append(lines[index].trimmingCharacters(in: .whitespaces))
                index += 1
            }
            expressions.append(block.joined(separator: " "))
        }
        return expressions
    }

    /// Names of the samples in Prometheus text (`name{labels} value` or `name value`).
    static func sampleNames(in text: String) -> Set<String> {
        Set(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        })
    }
}

/// Just enough of PromQL's lexical structure to find the metric names an expression reads.
enum PromQL {
    /// Aggregation operators (they may take `by (...)` before their parentheses) and keywords.
    static let notMetrics: Set<String> = [
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf", "nan",
    ]
    /// Keywords whose parentheses hold label names, not expressions.
    static let labelLists: Set<String> = ["by", "without", "on", "ignoring", "group_left", "group_right"]

    static func metricNames(in expression: String) -> Set<String> {
        let characters = Array(expression)
        var names = Set<String>()
        var index = 0
        func skip(to close: Character) {  // past the matching `close`, over quoted strings
            while index < characters.count, characters[index] != close {
                if characters[index] == "\"" || characters[index] == "'" { skipString() } else { index += 1 }
            }
            index += 1
        }
        func skipString() {
            let quote = characters[index]
            index += 1
            while index < characters.count, characters[index] != quote { index += characters[index] == "\\" ? 2 : 1 }
            index += 1
        }
        func isNameCharacter(_ character: Character) -> Bool { character.isLetter || character.isNumber || character == "_" || character == ":" }
        while index < characters.count {
            let character = characters[index]
            if character == "\"" || character == "'" {
                skipString()
            } else if character == "{" {
                skip(to: "}")
            } else if character == "[" {
                skip(to: "]")
            } else if character == "$" || character.isNumber || character == "." {  // variables, numbers, durations
                index += 1
                while index < characters.count, isNameCharacter(characters[index]) || characters[index] == "." { index += 1 }
            } else if character.isLetter || character == "_" || character == ":" {
                let start = index
                while index < characters.count, isNameCharacter(characters[index]) { index += 1 }
                let name = String(characters[start..<index])
                var next = index
                while next < characters.count, characters[next] == " " || characters[next] == "\n" { next += 1 }
                let opensParenthesis = next < characters.count && characters[next] == "("
                if labelLists.contains(name), opensParenthesis {
                    index = next + 1
                    skip(to: ")")
                } else if !opensParenthesis, !notMetrics.contains(name) {
                    names.insert(name)
                }
            } else {
                index += 1
            }
        }
        return names
    }
}
