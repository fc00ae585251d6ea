import Foundation
@testable import Kafka
import Testing

/// `-X key=@/path`: secrets from files, never from argv.
@Suite struct KafkaConfigurationTests {
    @Test func valueFromAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-secret-\(UUID())").path
        try Data("s3cret-sasl\n".utf8).write(to: URL(fileURLWithPath: path))
        var configuration = KafkaConfiguration()
        try configuration.apply(["sasl.password=@\(path)", "sasl.username=@@literal", "client.id=plain"])
        #expect(configuration["sasl.password"] == "s3cret-sasl")
        #expect(configuration["sasl.username"] == "@literal")
        #expect(configuration["client.id"] == "plain")
        #expect(!configuration.description.contains("s3cret"))
    }

    @Test func unreadableFileIsAClearError() {
        var configuration = KafkaConfiguration()
        let error = #expect(throws: KafkaError.self) { try configuration.apply(["sasl.password=@/nonexistent/kafka-secret"]) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("sasl.password=@/nonexistent/kafka-secret: cannot read the file"))
    }
}

/// The group protocol, read from the configured assignors instead of asked of librdkafka inside
/// its own close.
@Suite struct RebalanceProtocolTests {
    @Test func onlyCooperativeStickyIsCooperative() {
        #expect(RebalanceContext.isCooperative("cooperative-sticky"))
        #expect(RebalanceContext.isCooperative(" cooperative-sticky "))
        #expect(!RebalanceContext.isCooperative(nil), "the default, range,roundrobin")
        #expect(!RebalanceContext.isCooperative("range"))
        #expect(!RebalanceContext.isCooperative("roundrobin,range"))
    }
}
