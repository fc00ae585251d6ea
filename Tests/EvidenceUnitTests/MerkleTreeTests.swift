import Crypto
import Evidence
import Testing

@Suite struct MerkleTreeTests {
    /// RFC 6962's definition, recursively: the level-by-level tree must equal it for every size.
    static func reference(_ leaves: ArraySlice<TreeHash>) -> TreeHash {
        if leaves.count == 1 { return leaves.first! }
        var split = 1
        while split * 2 < leaves.count { split *= 2 }
        return MerkleTree.node(reference(leaves.prefix(split)), reference(leaves.dropFirst(split)))
    }

    @Test func everySizeMatchesRFC6962sSplit() {
        let leaves = (0..<70).map { MerkleTree.leaf([UInt8($0)]) }
        for size in 1...leaves.count {
            #expect(MerkleTree.root(Array(leaves.prefix(size))) == Self.reference(leaves.prefix(size)[...]), "size \(size)")
        }
    }

    @Test func leavesAndNodesAreDomainSeparated() {
        // SHA-256(0x00) is the leaf of nothing; the empty tree is SHA-256 of nothing.
        #expect(MerkleTree.leaf([]).description == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        #expect(MerkleTree.root([]).description == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let a = MerkleTree.leaf([1]), b = MerkleTree.leaf([2])
        #expect(MerkleTree.node(a, b) == TreeHash(Array(SHA256.hash(data: [1] + a.bytes + b.bytes))))
        #expect(MerkleTree.node(a, b) != MerkleTree.node(b, a))
    }

    @Test func hashesSortBytewiseAndRoundTripThroughHex() {
        let low = TreeHash([UInt8](repeating: 0, count: 31) + [1])!, high = TreeHash([1] + [UInt8](repeating: 0, count: 31))!
        #expect(low < high)
        #expect(TreeHash(hex: high.description) == high)
        #expect(high.byteaLiteral.hasPrefix("\\x01"))
    }
}
