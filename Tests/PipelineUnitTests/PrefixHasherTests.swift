@testable import Pipeline
import Testing

/// The prefix hash is stored in `ingest_offsets.prefix_hash`: a later run compares it with the
/// file's bytes before it resumes, so its values must never change, however it is computed.
struct PrefixHasherTests {
    /// The hash as defined: little-endian 8-byte words mixed in order, the last partial word
    /// zero-padded, then the length and a finaliser. One byte at a time, nothing clever.
    private static func reference(_ bytes: [UInt8]) -> Int64 {
        func mix(_ state: UInt64, _ word: UInt64) -> UInt64 {
            let scrambled = word &* 0x87C3_7B91_1142_53D5
            let rotated = (scrambled << 31) | (scrambled >> 33)
            let combined = state ^ (rotated &* 0x4CF5_AD43_2745_937F)
            return ((combined << 27) | (combined >> 37)) &* 5 &+ 0x52DC_E729
        }
        var state: UInt64 = 0x243F_6A88_85A3_08D3
        var word: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            word |= UInt64(byte) << (8 * (index % 8))
            if index % 8 == 7 { state = mix(state, word); word = 0 }
        }
        if bytes.count % 8 != 0 { state = mix(state, word) }
        var hash = state ^ UInt64(bytes.count)
        hash ^= hash >> 33
        hash &*= 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 33
        hash &*= 0xC4CE_B9FE_1A85_EC53
        hash ^= hash >> 33
        return Int64(bitPattern: hash)
    }

    private static func hash(_ chunks: [[UInt8]]) -> Int64 {
        var hasher = PrefixHasher()
        for chunk in chunks { chunk.withUnsafeBytes { hasher.update($0) } }
        return hasher.value
    }

    /// Values stored by earlier versions (taken from the byte-at-a-time version of `update`): a
    /// change of the function would make every stored file position look edited.
    @Test func valuesStoredByEarlierVersionsAreUnchanged() {
        #expect(Self.hash([]) == 8_848_935_107_335_307_795)
        #expect(Self.hash([Array("{\"a\":1}\n".utf8)]) == 8_954_152_939_174_528_440)
        #expect(Self.hash([Array("hello, audit log".utf8)]) == -5_044_656_509_657_115_356)
        #expect(Self.hash([Array(0...255)]) == 249_214_789_365_117_276)
    }

    /// Any split of the bytes into chunks (lines, reads, one byte at a time) gives the value of
    /// the reference, at every length.
    @Test func everySplitGivesTheReferenceValue() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Self.reference(bytes)
            #expect(Self.hash([bytes]) == expected, "whole, length \(length)")
            #expect(Self.hash(bytes.map { [$0] }) == expected, "byte by byte, length \(length)")
            for _ in 0..<20 {
                var chunks: [[UInt8]] = []
                var rest = bytes[...]
                while !rest.isEmpty {
                    let take = Int.random(in: 0...min(rest.count, 23), using: &generator)
                    chunks.append(Array(rest.prefix(take)))
                    rest = rest.dropFirst(take)
                }
                #expect(Self.hash(chunks) == expected, "chunks \(chunks.map(\.count)), length \(length)")
            }
        }
    }
}
