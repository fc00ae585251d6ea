import Evidence
import Testing

/// RFC 6962 inclusion proofs: every leaf of every tree size up to 33 proves to the tree's root,
/// and a wrong leaf, index, size or sibling does not.
@Suite struct MerkleProofTests {
    static func leaves(_ count: Int) -> [TreeHash] { (0..<count).map { MerkleTree.leaf([UInt8(truncatingIfNeeded: $0), 7]) } }

    @Test func everyLeafOfEverySizeProvesToTheRoot() {
        for size in 1...33 {
            let leaves = Self.leaves(size)
            let root = MerkleTree.root(leaves)
            for index in 0..<size {
                let path = MerkleProof.inclusionPath(index: index, leaves: leaves)
                #expect(MerkleProof.root(leaf: leaves[index], index: Int64(index), size: Int64(size), path: path) == root,
                        "size \(size), leaf \(index)")
            }
        }
    }

    @Test func aWrongLeafIndexSizeOrSiblingDoesNotProve() {
        let leaves = Self.leaves(13)
        let root = MerkleTree.root(leaves)
        let path = MerkleProof.inclusionPath(index: 5, leaves: leaves)
        #expect(path.count == 4)
        #expect(MerkleProof.root(leaf: leaves[6], index: 5, size: 13, path: path) != root)
        #expect(MerkleProof.root(leaf: leaves[5], index: 4, size: 13, path: path) != root)
        // The size shapes the climb only where the leaf's right edge is: the signed checkpoint's
        // size binds it (EventProof checks the two agree).
        #expect(MerkleProof.root(leaf: leaves[5], index: 5, size: 6, path: path) != root)
        #expect(MerkleProof.root(leaf: leaves[5], index: 5, size: 13, path: Array(path.dropLast())) == nil)
        #expect(MerkleProof.root(leaf: leaves[5], index: 5, size: 13, path: path + [root]) == nil)
        #expect(MerkleProof.root(leaf: leaves[5], index: 13, size: 13, path: path) == nil)
        var swapped = path
        swapped[1] = leaves[0]
        #expect(MerkleProof.root(leaf: leaves[5], index: 5, size: 13, path: swapped) != root)
        // A one-leaf tree: the leaf is the root, with an empty path.
        #expect(MerkleProof.root(leaf: leaves[0], index: 0, size: 1, path: []) == leaves[0])
    }
}

/// The inet column read back from a leaf prints as PostgreSQL prints it (RFC 5952).
@Suite struct SealedRowInetTests {
    static func inet(_ family: UInt8, _ bits: UInt8, _ address: [UInt8]) -> String? {
        SealedRow.inet([family, bits, 0, UInt8(address.count)] + address)
    }

    @Test func addressesPrintAsStored() {
        #expect(Self.inet(2, 32, [10, 1, 2, 3]) == "10.1.2.3")
        #expect(Self.inet(2, 24, [10, 1, 2, 0]) == "10.1.2.0/24")
        #expect(Self.inet(3, 128, [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]) == "2001:db8::1")
        #expect(Self.inet(3, 128, [UInt8](repeating: 0, count: 16)) == "::")
        #expect(Self.inet(3, 128, [0, 1] + [UInt8](repeating: 0, count: 14)) == "1::")
        #expect(Self.inet(3, 128, [0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4]) == "1:0:2::3:0:4")
        #expect(Self.inet(3, 128, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]) == "1:2:3:4:5:6:7:8")
    }
}

/// RFC 6962 consistency proofs: every prefix of every tree up to 20 leaves is proven consistent,
/// and a changed leaf, root or path is not.
@Suite struct ConsistencyProofTests {
    @Test func everyPrefixIsConsistentWithItsTree() {
        for second in 1...20 {
            let leaves = MerkleProofTests.leaves(second)
            let secondRoot = MerkleTree.root(leaves)
            for first in 1...second {
                let firstRoot = MerkleTree.root(Array(leaves.prefix(first)))
                let path = MerkleProof.consistencyPath(first: first, leaves: leaves)
                #expect(MerkleProof.isConsistent(first: Int64(first), firstRoot: firstRoot, second: Int64(second),
                                                 secondRoot: secondRoot, path: path), "\(first) → \(second)")
            }
        }
    }

    @Test func aRewrittenPrefixIsNotConsistent() {
        let leaves = MerkleProofTests.leaves(11)
        var rewritten = leaves
        rewritten[2] = MerkleTree.leaf([99])
        for first in [3, 4, 7] {
            let oldRoot = MerkleTree.root(Array(leaves.prefix(first)))
            // The new log's proof, against the root held before the rewrite.
            let path = MerkleProof.consistencyPath(first: first, leaves: rewritten)
            #expect(!MerkleProof.isConsistent(first: Int64(first), firstRoot: oldRoot, second: 11,
                                              secondRoot: MerkleTree.root(rewritten), path: path), "from \(first)")
            let honest = MerkleProof.consistencyPath(first: first, leaves: leaves)
            #expect(!MerkleProof.isConsistent(first: Int64(first), firstRoot: oldRoot, second: 11,
                                              secondRoot: MerkleTree.root(leaves), path: Array(honest.dropLast())))
        }
    }
}

/// The log's stored nodes (migration 0022): what the frontier completes as it grows is every
/// perfect subtree, and proofs folded from those nodes equal proofs from all the leaves.
@Suite struct LogNodeTests {
    @Test func proofsFromStoredNodesEqualProofsFromTheLeaves() {
        let leaves = MerkleProofTests.leaves(70)
        var frontier = LogFrontier()
        var stored: [LogNodeID: TreeHash] = [:]
        for leaf in leaves { for node in frontier.appendReturningNodes(leaf) { stored[node.id] = node.hash } }
        #expect(stored.count == 2 * 70 - 70.nonzeroBitCount, "one node per perfect subtree")
        for size in 1...70 {
            let prefix = Array(leaves.prefix(size))
            #expect(LeafRange(start: 0, count: Int64(size)).hash(stored) == MerkleTree.root(prefix), "size \(size)")
            for index in 0..<size {
                let ranges = MerkleProof.inclusionRanges(index: Int64(index), size: Int64(size))
                #expect(ranges.map { $0.hash(stored) } == MerkleProof.inclusionPath(index: index, leaves: prefix).map { Optional($0) })
            }
            for first in 1...size {
                let ranges = MerkleProof.consistencyRanges(first: Int64(first), size: Int64(size))
                #expect(ranges.map { $0.hash(stored) } == MerkleProof.consistencyPath(first: first, leaves: prefix).map { Optional($0) })
            }
        }
        // A missing node is said, not guessed.
        stored[LogNodeID(level: 3, index: 1)] = nil
        #expect(LeafRange(start: 8, count: 8).hash(stored) == nil)
    }
}
