extension IPAddress {
    /// Parses a host address as inet_pton does: dotted-quad IPv4 or IPv6 (with embedded IPv4).
    /// No prefix lengths, zone ids or abbreviated IPv4 forms.
    init?(parsing text: UnsafeRawBufferPointer) {
        guard text.count >= 2, text.count <= 45 else { return nil }
        guard text.contains(0x3A) else {
            guard let address = Self.dottedQuad(text) else { return nil }
            self = .v4(address)
            return
        }
        guard let (high, low) = Self.colonHex(text) else { return nil }
        self = .v6(high: high, low: low)
    }

    /// An IPv6 address in the forms inet_pton takes: eight groups of one to four hex digits
    /// separated by colons; one `::` standing for one or more zero groups (also first or last);
    /// the last two groups optionally written as a dotted quad. Parsed here, not by inet_pton:
    /// the C call needs a NUL-terminated copy of the text first.
    static func colonHex(_ text: UnsafeRawBufferPointer) -> (high: UInt64, low: UInt64)? {
        var groups = SIMD8<UInt16>()
        var count = 0
        var gap: Int?  // where `::` stands: the index of the group after it
        var index = 0
        if text.first == 0x3A {  // a leading colon only as part of `::`
            guard text.count > 1, text[1] == 0x3A else { return nil }
            index = 1
        }
        var tokenStart = index
        var value: UInt16 = 0
        var digits = 0
        while index < text.count {
            let byte = text[index]
            index += 1
            let nibble = hexNibble(byte)
            if nibble < 16 {
                guard digits < 4 else { return nil }
                value = value << 4 | UInt16(nibble)
                digits += 1
                continue
            }
            if byte == 0x3A {
                tokenStart = index
                if digits == 0 {
                    guard gap == nil else { return nil }
                    gap = count
                    continue
                }
                guard index < text.count, count < 8 else { return nil }  // no trailing single colon
                groups[count] = value
                count += 1
                (value, digits) = (0, 0)
                continue
            }
            // The last 32 bits as a dotted quad, from the start of this group.
            guard byte == 0x2E, count <= 6,
                  let quad = Self.dottedQuad(UnsafeRawBufferPointer(rebasing: text[tokenStart...])) else { return nil }
            groups[count] = UInt16(truncatingIfNeeded: quad >> 16)
            groups[count + 1] = UInt16(truncatingIfNeeded: quad)
            count += 2
            digits = 0
            break
        }
        if digits > 0 {
            guard count < 8 else { return nil }
            groups[count] = value
            count += 1
        }
        if let gap {
            guard count < 8 else { return nil }  // `::` stands for at least one group
            let moved = count - gap
            for offset in stride(from: moved - 1, through: 0, by: -1) {
                groups[8 - moved + offset] = groups[gap + offset]
            }
            for zeroed in gap..<(8 - moved) { groups[zeroed] = 0 }
            count = 8
        }
        guard count == 8 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for group in 0..<4 {
            high = high << 16 | UInt64(groups[group])
            low = low << 16 | UInt64(groups[group + 4])
        }
        return (high, low)
    }

    /// An IPv4 address in the form inet_pton takes: four decimal parts of at most 255, without
    /// leading zeros, separated by dots. Parsed here rather than by inet_pton, which needs a C
    /// string and costs as much as the rest of an event's fields.
    static func dottedQuad(_ text: UnsafeRawBufferPointer) -> UInt32? {
        var address: UInt32 = 0
        var parts = 0
        var part: UInt32 = 0
        var digits = 0
        for byte in text {
            switch byte {
            case 0x30...0x39:
                guard digits == 0 || part != 0 else { return nil }  // a leading zero
                part = part * 10 + UInt32(byte - 0x30)
                guard part <= 255 else { return nil }
                digits += 1
            case 0x2E:
                guard digits > 0, parts < 3 else { return nil }
                address = address << 8 | part
                parts += 1
                (part, digits) = (0, 0)
            default:
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return address << 8 | part
    }
}
