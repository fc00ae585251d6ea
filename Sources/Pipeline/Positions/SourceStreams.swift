/// Where the engine's partitions are stored in ingest_offsets and audit_dead_letter. The engine
/// numbers partitions with one `Int32`; most sources have one name, under which every
/// partition is stored with its own number. A Kafka source reading several topics numbers the
/// partitions of all of them (`KafkaTopics` keys) and stores each under its topic's source
/// (`kafka:<group>:<topic>`) with its real partition number, so a topic's positions stay
/// where a run of that topic alone keeps them.
package struct SourceStreams: Sendable {
    /// Where an engine partition is stored.
    package struct Location: Hashable, Sendable {
        package var source: String
        package var partition: Int32

        package init(source: String, partition: Int32) {
            self.source = source
            self.partition = partition
        }
    }

    /// The run's name (logs, metrics, the summary): the one source, or what the sources share.
    package let name: String
    private let locator: (@Sendable (Int32) -> Location)?

    /// Every partition stored under `name` with its own number.
    package static func single(_ name: String) -> SourceStreams { SourceStreams(name: name, locator: nil) }

    /// Partitions stored where `locate` says.
    package init(name: String, locate: @escaping @Sendable (Int32) -> Location) {
        self.init(name: name, locator: locate)
    }

    private init(name: String, locator: (@Sendable (Int32) -> Location)?) {
        self.name = name
        self.locator = locator
    }

    /// Where `partition` (the engine's number) is stored.
    @inline(__always)
    package func locate(_ partition: Int32) -> Location {
        locator?(partition) ?? Location(source: name, partition: partition)
    }

    /// `partitions` by the source they are stored under, each with its stored number, sources
    /// in name order (a fixed order: transactions that lock several take the locks alike).
    func bySource(_ partitions: some Sequence<Int32>) -> [(source: String, partitions: [(engine: Int32, stored: Int32)])] {
        var groups: [String: [(engine: Int32, stored: Int32)]] = [:]
        for partition in partitions {
            let location = locate(partition)
            groups[location.source, default: []].append((partition, location.partition))
        }
        return groups.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
