/// A streaming 64-bit hash of a byte stream's prefix: `update` with consecutive chunks (any
/// split), `value` at any point is the hash of everything so far. Used to recognise that the part
/// of a file an earlier run stored is unchanged (not a cryptographic hash: it detects edits,
/// truncation and other files, not a forger).
///
/// Eight bytes per step, so hashing a file costs a fraction of reading it.
struct PrefixHasher {
    private var state: UInt64 = 0x243F_6A88_85A3_08D3
    /// Bytes of an unfinished 8-byte word, little-endian, `carryCount` of them.
    private var carry: UInt64 = 0
    private var carryCount = 0
    /// Bytes hashed so far.
    private(set) var length: Int64 = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return }
        length += Int64(count)
        var index = 0
        if carryCount > 0 {
            while carryCount < 8 && index < count {
                carry |= UInt64(base.load(fromByteOffset: index, as: UInt8.self)) << (8 * carryCount)
                carryCount += 1
                index += 1
            }
            guard carryCount == 8 else { return }
            state = Self.mix(state, carry)
            carry = 0
            carryCount = 0
        }
        while index + 8 <= count {
            state = Self.mix(state, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index += 8
        }
        while index < count {
            carry |= UInt64(base.load(fromByteOffset: index, as: UInt8.self)) << (8 * carryCount)
            carryCount += 1
            index += 1
        }
    }

    /// The hash of every byte given so far (a signed value, as PostgreSQL's bigint stores it).
    var value: Int64 {
        var hash = carryCount > 0 ? Self.mix(state, carry) : state
        hash ^= UInt64(bitPattern: length)
        // Final avalanche (the murmur3 finaliser), so nearby prefixes differ in every bit.
        hash ^= hash >> 33
        hash &*= 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 33
        hash &*= 0xC4CE_B9FE_1A85_EC53
        hash ^= hash >> 33
        return Int64(bitPattern: hash)
    }

    @inline(__always)
    private static func mix(_ state: UInt64, _ word: UInt64) -> UInt64 {
        let scrambled = (word &* 0x87C3_7B91_1142_53D5)
        let rotated = (scrambled << 31) | (scrambled >> 33)
        let combined = state ^ (rotated &* 0x4CF5_AD43_2745_937F)
        return ((combined << 27) | (combined >> 37)) &* 5 &+ 0x52DC_E729
    }
}
