import CTreeSHA256
import Crypto

/// RFC 6962's Merkle tree hash (section 2.1), with its domain separation: a leaf is
/// SHA-256(0x00 ‖ data), a node SHA-256(0x01 ‖ left ‖ right), and a tree of n leaves splits at
/// the largest power of two below n. The empty tree's hash is SHA-256 of nothing.
public enum MerkleTree {
    /// SHA-256(0x00 ‖ `kind` ‖ `data`): a leaf whose data starts with a byte naming what it is.
    public static func leaf(kind: UInt8, _ data: UnsafeRawBufferPointer) -> TreeHash {
        let prefix: (UInt8, UInt8) = (0, kind)
        return withUnsafeBytes(of: prefix) { prefix in hash(prefix, data) }
    }

    /// SHA-256(0x00 ‖ `data`).
    public static func leaf(_ data: [UInt8]) -> TreeHash {
        let prefix: UInt8 = 0
        return withUnsafeBytes(of: prefix) { prefix in data.withUnsafeBytes { hash(prefix, $0) } }
    }

    /// SHA-256(0x01 ‖ left ‖ right).
    public static func node(_ left: TreeHash, _ right: TreeHash) -> TreeHash {
        var children = (left.words.0.bigEndian, left.words.1.bigEndian, left.words.2.bigEndian, left.words.3.bigEndian,
                        right.words.0.bigEndian, right.words.1.bigEndian, right.words.2.bigEndian, right.words.3.bigEndian)
        let prefix: UInt8 = 1
        return withUnsafeBytes(of: prefix) { prefix in withUnsafeBytes(of: &children) { hash(prefix, $0) } }
    }

    /// SHA-256(`prefix` ‖ `data`), with OpenSSL's context on the stack (CTreeSHA256 says why).
    @inline(__always)
    private static func hash(_ prefix: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer) -> TreeHash {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { out in
            audit_tree_sha256(prefix.baseAddress!.assumingMemoryBound(to: UInt8.self), prefix.count, data.baseAddress, data.count,
                              out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return TreeHash(loading: UnsafeRawBufferPointer(out))
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
