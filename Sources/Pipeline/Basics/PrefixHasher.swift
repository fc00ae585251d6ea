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
            let taken = min(8 - carryCount, count)
            carry |= Self.partialWord(at: 0, count: taken, in: bytes) << (8 * UInt64(carryCount))
            carryCount += taken
            index = taken
            guard carryCount == 8 else { return }
            state = Self.mix(state, carry)
            carry = 0
            carryCount = 0
        }
        var state = state  // one dependency chain: kept in a register, not stored per word
        while count &- index >= 8 {
            state = Self.mix(state, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index &+= 8
        }
        self.state = state
        if index < count {
            carryCount = count - index
            carry = Self.partialWord(at: index, count: carryCount, in: bytes)
        }
    }

    /// `count` (1...7) bytes of `bytes` from `offset`, little-endian in the low bytes of a word,
    /// the rest zero. A chunk of 8 bytes or more gives them with one unaligned load inside it
    /// (the 8 bytes from `offset`, or its last 8), not a loop over bytes.
    @inline(__always)
    private static func partialWord(at offset: Int, count: Int, in bytes: UnsafeRawBufferPointer) -> UInt64 {
        let mask: UInt64 = (1 << (8 * UInt64(count))) &- 1
        guard bytes.count >= 8 else {
            var word: UInt64 = 0
            for index in 0..<count { word |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
            return word
        }
        if offset + 8 <= bytes.count {
            return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) & mask
        }
        let last = bytes.count - 8
        return (UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: last, as: UInt64.self)) >> (8 * UInt64(offset - last))) & mask
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
