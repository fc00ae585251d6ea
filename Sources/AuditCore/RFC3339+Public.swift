extension RFC3339 {
    /// Microseconds since the Unix epoch of an RFC 3339 date-time with an offset (the wire
    /// contract's `timestamp` rules), or nil when `text` is not one.
    public static func unixMicroseconds(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { bytes in
            if case .success(let micros) = parse(UnsafeRawBufferPointer(bytes)) { return micros }
            return nil
        }
    }
}
