/// What a message came with besides its bytes: for Kafka its topic, partition, offset,
/// timestamp, key and headers. Built by a source only when the run uses it (`ContextMetadata`,
/// a header tenant, CloudEvents binary mode), so messages without it cost nothing extra.
public struct MessageContext: Sendable {
    /// A header: a name (names may repeat) and bytes, nil for a null value.
    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: [UInt8]?

        public init(name: String, value: [UInt8]?) {
            self.name = name
            self.value = value
        }
    }

    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The Kafka timestamp, milliseconds since the Unix epoch.
    public var timestamp: Int64?
    public var key: [UInt8]?
    public var headers: [Header]

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64?, key: [UInt8]?, headers: [Header]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.headers = headers
    }

    /// The value of the last header named `name` (exactly, as Kafka compares them) when it is
    /// UTF-8 text without NUL; nil otherwise.
    public func header(_ name: String) -> String? {
        guard let value = headers.last(where: { $0.name == name })?.value else { return nil }
        return Self.text(value)
    }

    /// The value of header `name` when the message says one thing by it: nil without the header;
    /// a rejection when its value is not UTF-8 text without NUL (`invalid UTF-8`), or when it is
    /// given more than once with different values (`duplicate field`: a reader that takes the
    /// first and one that takes the last would disagree).
    public func singleHeader(_ name: String) throws(Rejection) -> String? {
        let values = headers.filter { $0.name == name }.map(\.value)
        guard let first = values.first else { return nil }
        guard values.allSatisfy({ $0 == first }) else {
            throw Rejection(.duplicateField, field: name, "header \(name) is given \(values.count) times with different values")
        }
        guard let bytes = first, let text = Self.text(bytes) else {
            throw Rejection(.invalidUTF8, field: name, "header \(name) is not UTF-8 text without NUL")
        }
        return text
    }

    /// `bytes` as text when they are UTF-8 without NUL (jsonb refuses `\u0000`).
    static func text(_ bytes: [UInt8]) -> String? {
        guard !bytes.contains(0) else { return nil }
        return bytes.withUnsafeBytes { isValidUTF8($0) } ? String(decoding: bytes, as: UTF8.self) : nil
    }
}

/// What of a message's context is kept in the event's `custom_metadata`. Default: nothing.
public struct ContextMetadata: Sendable, Equatable {
    /// Keep topic, partition, offset, Kafka timestamp, key and headers under the key `kafka`.
    public var kafka: Bool
    /// Keep a valid W3C `traceparent` header (and its `tracestate`) under `traceparent` and
    /// `tracestate`; an invalid one is not kept (the event is stored all the same).
    public var traceparent: Bool

    public init(kafka: Bool = false, traceparent: Bool = false) {
        self.kafka = kafka
        self.traceparent = traceparent
    }

    public var isEmpty: Bool { !kafka && !traceparent }
}
