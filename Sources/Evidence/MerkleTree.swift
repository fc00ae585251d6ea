import Crypto

/// RFC 6962's Merkle tree hash (section 2.1), with its domain separation: a leaf is
/// SHA-256(0x00 ‖ data), a node SHA-256(0x01 ‖ left ‖ right), and a tree of n leaves splits at
/// the largest power of two below n. The empty tree's hash is SHA-256 of nothing.
public enum MerkleTree {
    /// SHA-256(0x00 ‖ `kind` ‖ `data`): a leaf whose data starts with a byte naming what it is.
    /// (The two bytes and the data are hashed as one contiguous buffer: about 10% faster for a
    /// 700-byte row than feeding them separately, which makes BoringSSL copy every block.)
    public static func leaf(kind: UInt8, _ data: UnsafeRawBufferPointer) -> TreeHash {
        withUnsafeTemporaryAllocation(byteCount: data.count + 2, alignment: 16) { buffer in
            buffer[0] = 0
            buffer[1] = kind
            if let base = data.baseAddress { (buffer.baseAddress! + 2).copyMemory(from: base, byteCount: data.count) }
            return TreeHash(SHA256.hash(data: UnsafeRawBufferPointer(buffer)))
        }
    }

    /// SHA-256(0x00 ‖ `data`).
    public static func leaf(_ data: [UInt8]) -> TreeHash {
        var hasher = SHA256()
        hasher.update(data: [0])
        hasher.update(data: data)
        return TreeHash(hasher.finalize())
    }

    /// SHA-256(0x01 ‖ left ‖ right).
    public static func node(_ left: TreeHash, _ right: TreeHash) -> TreeHash {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 16) { buffer in
            buffer[0] = 1
            left.withBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[1..<33]).copyMemory(from: $0) }
            right.withBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[33..<65]).copyMemory(from: $0) }
            return TreeHash(SHA256.hash(data: UnsafeRawBufferPointer(buffer)))
        }
    }

    /// The tree hash over `leaves` (leaf hashes, in order). Level by level, pairing from the
    /// left and carrying an odd last node up unchanged: the same tree as RFC 6962's split.
    public static func root(_ leaves: [TreeHash]) -> TreeHash {
        guard !leaves.isEmpty else { return TreeHash(SHA256.hash(data: [UInt8]())) }
        var level = leaves
        while level.count > 1 {
            var next = 0
            for index in stride(from: 0, to: level.count, by: 2) {
                level[next] = index + 1 < level.count ? node(level[index], level[index + 1]) : level[index]
                next += 1
            }
            level.removeLast(level.count - next)
        }
        return level[0]
    }
}
