import AsyncHTTPClient
import AuditCore
import AuditRead
import Crypto
import Foundation
import Kafka
import NIOCore

/// What one delivery sends: the body and headers for a destination's kind.
///
/// - webhook: `{"destination":NAME,"tenant_id":ID,"events":[...]}` as `application/json`, with
///   `X-Audit-Ingest-Signature: t=UNIX,v1=HEX` where HEX is HMAC-SHA256 under the secret of
///   `"UNIX." + body` (a receiver checks it and refuses old `t`, so a replay is seen).
/// - file: the events, one per line (appended to the destination's open segment, `FileSegments`).
/// - Splunk HEC: one `{"time":T,"source":"audit-ingest","sourcetype":"audit-ingest:event","event":{...}}`
///   per event, concatenated, with `Authorization: Splunk SECRET`.
///
/// Every event carries its `id`: a receiver drops one it has seen (deliveries are at least once).
struct DeliveryRequest: Sendable {
    static let signatureHeader = "X-Audit-Ingest-Signature"

    var body: [UInt8]
    var headers: [(String, String)]

    init(kind: StreamDestination.Kind, destination: String, tenant: String, events: [String], secret: [UInt8]?,
         now: Date = Date()) {
        switch kind {
        case .webhook:
            var text = #"{"destination":"# + Self.quoted(destination) + #","tenant_id":""# + tenant + #"","events":["#
            text += events.joined(separator: ",")
            text += "]}"
            body = Array(text.utf8)
            headers = [("Content-Type", "application/json")]
            if let secret {
                let unix = String(Int64(now.timeIntervalSince1970))
                let mac = HMAC<SHA256>.authenticationCode(for: Array((unix + ".").utf8) + body, using: SymmetricKey(data: secret))
                headers.append((Self.signatureHeader, "t=\(unix),v1=" + mac.map { String(format: "%02x", $0) }.joined()))
            }
        case .splunkHEC:
            var text = ""
            for event in events {
                text += #"{"time":"# + Self.epoch(ofEvent: event) + #","source":"audit-ingest","sourcetype":"audit-ingest:event","event":"#
                text += event
                text += "}\n"
            }
            body = Array(text.utf8)
            headers = [("Content-Type", "application/json")]
            if let secret { headers.append(("Authorization", "Splunk " + String(decoding: secret, as: UTF8.self))) }
        case .file, .kafka:  // Kafka sends each event as its own message (`KafkaTopicDestination`)
            body = Array(events.map { $0 + "\n" }.joined().utf8)
            headers = []
        }
    }

    /// A JSON string literal (destination names are `[A-Za-z0-9._-]`, checked by the schema).
    static func quoted(_ text: String) -> String { "\"" + text + "\"" }

    /// The event's `timestamp` as seconds since 1970 with microseconds, for HEC's `time`.
    static func epoch(ofEvent event: String) -> String {
        guard let start = event.range(of: #""timestamp":""#)?.upperBound, let end = event[start...].firstIndex(of: "\""),
              let micros = RFC3339.unixMicroseconds(String(event[start..<end])) else { return "0" }
        let (seconds, fraction) = micros.quotientAndRemainder(dividingBy: 1_000_000)
        let digits = String(abs(fraction))
        return (micros < 0 && seconds == 0 ? "-" : "") + String(seconds) + "." + String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// POSTs the delivery; throws `DeliveryFailed` unless the receiver answers 2xx.
    func post(to url: String, client: HTTPClient) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "User-Agent", value: "audit-ingest")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(30))
        } catch {
            throw DeliveryFailed(description: String(describing: error))
        }
        // Read (a little of) the answer, so the connection can be used again.
        let answer = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(Int(response.status.code)) else {
            let text = answer.map { String(buffer: $0).prefix(200) } ?? ""
            throw DeliveryFailed(description: "HTTP \(response.status.code) \(SafeText.terminal(String(text)))")
        }
    }
}

/// A destination that did not take a delivery: unreachable, or an answer other than 2xx.
public struct DeliveryFailed: Error, CustomStringConvertible {
    public var description: String
}

/// `stream destination test`: one delivery with no events (webhook, with the header
/// `X-Audit-Ingest-Test: 1`) or one test event (Splunk HEC; Kafka, with the header
/// `audit-ingest-test: 1`), signed like any other; for a file destination, a check that its
/// directory can be written.
public enum DeliveryTest {
    private static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Streamer.clientConfiguration)

    public static func send(to destination: StreamDestination, secrets: Streamer.Secrets = Streamer.Secrets()) async throws {
        // A file destination: whether its directory is writable here (a test line would reach the SIEM).
        if destination.kind == .file { return try FileSegments.checkWritable(url: destination.url) }
        let secret = try await secrets.prepare(destination)
        if destination.kind == .kafka { return try await sendToKafka(destination, secret: secret) }
        let tenant = destination.tenantID ?? "00000000-0000-0000-0000-000000000000"
        let test = testEvent(tenant: tenant)
        var delivery = DeliveryRequest(kind: destination.kind, destination: destination.name, tenant: tenant,
                                       events: destination.kind == .webhook ? [] : [test], secret: secret)
        delivery.headers.append(("X-Audit-Ingest-Test", "1"))
        try await delivery.post(to: destination.url, client: client)
    }

    /// One test event, with the header `audit-ingest-test: 1`, acknowledged by the brokers.
    private static func sendToKafka(_ destination: StreamDestination, secret: [UInt8]?) async throws {
        let target = try KafkaTopicDestination(url: destination.url)
        let configuration = try target.configuration(secret: secret)
        let tenant = destination.tenantID ?? "00000000-0000-0000-0000-000000000000"
        var message = KafkaTopicDestination.messages(of: [testEvent(tenant: tenant)], tenant: tenant, destination: destination.name)[0]
        message.headers.append(("audit-ingest-test", "1"))
        let messages = [message]
        let result: Result<Void, any Error> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Result {
                    try KafkaProducer(configuration: configuration).sendConfirmed(
                        topic: target.topic, messages, timeout: KafkaTopicDestination.confirmationTimeout(configuration))
                })
            }
        }
        try result.get()
    }

    static func testEvent(tenant: String) -> String {
        #"{"id":"00000000-0000-0000-0000-000000000000","tenant_id":""# + tenant
            + #"","action":"audit_ingest.stream.test","timestamp":""# + now() + #""}"#
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date())
    }
}
