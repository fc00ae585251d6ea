/// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
/// ASCII runs are checked 32 bytes at a time, then eight.
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    let count = bytes.count
    var index = 0
    while index < count {
        // Fast paths: 32, then eight ASCII bytes (one branch for four words).
        while index + 32 <= count {
            let words = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                | base.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
                | base.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
                | base.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            guard words & highBits == 0 else { break }
            index += 32
        }
        guard index < count else { break }
        if index + 8 <= count, base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & highBits == 0 {
            index += 8
            continue
        }
        let lead = base.load(fromByteOffset: index, as: UInt8.self)
        if lead < 0x80 {
            index += 1
            continue
        }
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upperBound = 0x9F  // no surrogates
        case 0xF0: length = 4; lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upperBound = 0x8F  // ≤ U+10FFFF
        default: return false
        }
        guard index + length <= count else { return false }
        let second = base.load(fromByteOffset: index + 1, as: UInt8.self)
        guard second >= lowerBound && second <= upperBound else { return false }
        for offset in 2..<length {
            guard base.load(fromByteOffset: index + offset, as: UInt8.self) & 0xC0 == 0x80 else { return false }
        }
        index += length
    }
    return true
}

/// Unicode scalars in valid UTF-8: bytes that are not continuation bytes.
@inline(__always)
func characterCount(_ bytes: UnsafeRawBufferPointer) -> Int {
    var count = 0
    for byte in bytes where byte & 0xC0 != 0x80 { count += 1 }
    return count
}
