import Foundation

extension MessageContext {
    /// The members of `custom_metadata` that `keep` asks for, as JSON object members without
    /// the braces (`"kafka":{...},"traceparent":"..."`); nil when there is nothing to keep.
    ///
    /// `kafka` holds `topic`, `partition`, `offset`, `timestamp` (ms, when the message has one),
    /// `key` and `headers` (name to value; a repeated name keeps its last value). A key or value
    /// is text when it is UTF-8 without NUL, else `{"base64": "..."}`; a null one is null.
    public func metadataMembers(_ keep: ContextMetadata) -> [UInt8]? {
        var members: [String: Any] = [:]
        if keep.kafka { members["kafka"] = kafkaObject }
        if keep.traceparent, let traceparent = header("traceparent"), TraceParent.isValid(traceparent) {
            members["traceparent"] = traceparent
            if let state = header("tracestate") { members["tracestate"] = state }
        }
        guard !members.isEmpty, let data = try? JSONSerialization.data(withJSONObject: members, options: [.sortedKeys]) else {
            return nil
        }
        return Array(data.dropFirst().dropLast())
    }

    private var kafkaObject: [String: Any] {
        var object: [String: Any] = ["topic": topic, "partition": Int(partition), "offset": Int(offset),
                                     "key": key.map(Self.jsonValue) ?? NSNull()]
        if let timestamp { object["timestamp"] = Int(timestamp) }
        var headerObject: [String: Any] = [:]
        for header in headers { headerObject[header.name] = header.value.map(Self.jsonValue) ?? NSNull() }
        object["headers"] = headerObject
        return object
    }

    private static func jsonValue(_ bytes: [UInt8]) -> Any {
        text(bytes) ?? ["base64": Data(bytes).base64EncodedString()]
    }
}

/// Adds members to an event's metadata object.
public enum MetadataMerge {
    /// `object` (the metadata object's JSON text as the decoder validated it; nil when absent or
    /// null) with `members` (JSON object members, `"name":value,...`) added at its end, where
    /// they win over members of the same name (jsonb keeps the last of duplicate keys).
    public static func merge(_ object: UnsafeRawBufferPointer?, adding members: [UInt8]) -> [UInt8] {
        guard let object, let close = object.lastIndex(of: UInt8(ascii: "}")),
              let open = object.firstIndex(of: UInt8(ascii: "{")), open < close else {
            return [UInt8(ascii: "{")] + members + [UInt8(ascii: "}")]
        }
        let isEmpty = object[(open + 1)..<close].allSatisfy { [0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var merged = Array(object[..<close])
        if !isEmpty { merged.append(UInt8(ascii: ",")) }
        merged += members
        merged.append(UInt8(ascii: "}"))
        return merged
    }
}
