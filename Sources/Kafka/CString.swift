/// The text in a NUL-terminated C buffer.
func string(fromCBuffer buffer: [CChar]) -> String {
    let length = buffer.firstIndex(of: 0) ?? buffer.count
    return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
