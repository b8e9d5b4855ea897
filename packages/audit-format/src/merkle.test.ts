// Known answers from the project's independently checked vectors (DESIGN.md invariant 4), kept in the repository
// (test/rfc6962.json, a copy of shared/vectors/rfc6962.json, so a clone alone runs them; test/vectors.test.ts keeps the copy
// equal to the shared file wherever that sits beside the repository). Read in full: leaves, empty root, roots 1–8,
// inclusion and consistency proofs.
import vectors from '../test/rfc6962.json';
import {
  ProofError,
  type ProofResult,
  checkConsistency,
  checkInclusion,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  merkleRoot,
  merkleTreeHash,
  nodeHash,
  rootFromInclusionProof,
  verifyConsistency,
  verifyInclusion,
} from './merkle';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Buffer => Buffer.from(s, 'hex');

const leaves = vectors.leaves.map((l) => leafHash(unhex(l)));
const rootOf = (size: number): Buffer => unhex(vectors.roots.find((r) => r.size === size)!.root);

function expectProofError(fn: () => unknown, code: ProofError['code']): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ProofError);
  expect((caught as ProofError).code).toBe(code);
  expect((caught as ProofError).message.length).toBeGreaterThan(0);
}

const outcome = (r: ProofResult): string => (r.ok ? 'ACCEPTED' : r.code);

function flipBit(b: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(b);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

describe('RFC 6962 hashing (known answers)', () => {
  it('hashes the empty tree to SHA-256 of the empty string', () => {
    expect(hex(emptyRoot())).toBe(vectors.empty_root);
    expect(hex(merkleTreeHash([]))).toBe(vectors.empty_root);
    expect(hex(merkleRoot([]))).toBe(vectors.empty_root);
  });

  it('reproduces every published root, recursively and iteratively', () => {
    expect(vectors.roots).toHaveLength(8);
    for (const { size, root } of vectors.roots) {
      expect(hex(merkleTreeHash(leaves.slice(0, size)))).toBe(root);
      expect(hex(merkleRoot(leaves.slice(0, size)))).toBe(root);
    }
  });

  it('domain-separates leaves from nodes', () => {
    // A two-leaf root must not equal the leaf hash of the concatenated children (second-preimage guard).
    const joined = Buffer.concat([leaves[0]!, leaves[1]!]);
    expect(hex(leafHash(joined))).not.toBe(hex(nodeHash(leaves[0]!, leaves[1]!)));
    expect(hex(nodeHash(leaves[0]!, leaves[1]!))).toBe(rootOf(2).toString('hex'));
  });
});

describe('inclusion proofs (known answers)', () => {
  it.each(vectors.inclusion.map((v) => [v.leaf_index, v.tree_size, v.path] as const))(
    'PATH(%i, D[%i]) matches and verifies',
    (index, size, path) => {
      const proof = inclusionProof(leaves, index, size);
      expect(proof.map(hex)).toEqual(path);
      expect(() => verifyInclusion(leaves[index]!, index, size, path.map(unhex), rootOf(size))).not.toThrow();
      expect(checkInclusion(leaves[index]!, index, size, proof, rootOf(size))).toEqual({ ok: true });
    },
  );

  it('refuses generation outside the tree', () => {
    expectProofError(() => inclusionProof(leaves, 8, 8), 'INDEX_OUT_OF_RANGE');
    expectProofError(() => inclusionProof(leaves, -1, 8), 'INDEX_OUT_OF_RANGE');
    expectProofError(() => inclusionProof(leaves, 0, 9), 'SIZE_OUT_OF_RANGE');
    expectProofError(() => inclusionProof(leaves, 0, 0), 'INDEX_OUT_OF_RANGE');
  });
});

describe('consistency proofs (known answers)', () => {
  it.each(vectors.consistency.map((v) => [v.size1, v.size2, v.proof] as const))(
    'PROOF(%i, D[%i]) matches and verifies',
    (size1, size2, expected) => {
      const proof = consistencyProof(leaves, size1, size2);
      expect(proof.map(hex)).toEqual(expected);
      expect(() => verifyConsistency(size1, size2, rootOf(size1), rootOf(size2), expected.map(unhex))).not.toThrow();
      expect(checkConsistency(size1, size2, rootOf(size1), rootOf(size2), proof)).toEqual({ ok: true });
    },
  );

  it('treats size 0 as consistent with anything, given the empty root and an empty proof', () => {
    expect(consistencyProof(leaves, 0, 8)).toEqual([]);
    expect(() => verifyConsistency(0, 8, emptyRoot(), rootOf(8), [])).not.toThrow();
    expectProofError(() => verifyConsistency(0, 8, rootOf(1), rootOf(8), []), 'ROOT_MISMATCH');
    expectProofError(() => verifyConsistency(0, 8, emptyRoot(), rootOf(8), [rootOf(1)]), 'WRONG_PROOF_LENGTH');
  });
});

// Every proof for trees of 1..8 leaves, not only the published ones, so the battery covers every shape.
const allInclusion: { index: number; size: number; proof: Buffer[] }[] = [];
const allConsistency: { size1: number; size2: number; proof: Buffer[] }[] = [];
for (let size = 1; size <= 8; size++) {
  for (let index = 0; index < size; index++)
    allInclusion.push({ index, size, proof: inclusionProof(leaves, index, size) });
  for (let size1 = 1; size1 < size; size1++)
    allConsistency.push({ size1, size2: size, proof: consistencyProof(leaves, size1, size) });
}

describe('inclusion corruption battery', () => {
  it.each(allInclusion.map((c) => [c.index, c.size, c.proof] as const))(
    'leaf %i of %i: every alteration is rejected',
    (index, size, proof) => {
      const leaf = leaves[index]!;
      const root = rootOf(size);
      expect(() => verifyInclusion(leaf, index, size, proof, root)).not.toThrow();

      // Wrong leaf index: every other index in range, and out of range.
      for (let other = 0; other < size; other++) {
        if (other !== index) expect(checkInclusion(leaf, other, size, proof, root).ok).toBe(false);
      }
      expectProofError(() => verifyInclusion(leaf, size, size, proof, root), 'INDEX_OUT_OF_RANGE');
      // Wrong tree size, with that size's real root. (A root does not commit to its size — the signed tree head
      // binds the two — so a size whose path has the same shape cannot be told apart given the ORIGINAL root;
      // RFC 9162 verifiers share this, and it does not let anyone prove a leaf into a tree that lacks it.)
      for (let other = 1; other <= 8; other++) {
        if (other !== size) expect(checkInclusion(leaf, index, other, proof, rootOf(other)).ok).toBe(false);
      }
      // With the original root, every size whose path has another length is refused for its length.
      for (let other = index + 1; other <= 16; other++) {
        if (other <= 8 && inclusionProof(leaves, index, other).length === proof.length) continue;
        if (other > 8 && other !== size * 2) continue;
        expect(checkInclusion(leaf, index, other, proof, root).ok).toBe(false);
      }
      // Swapped roots: the root of any other tree size.
      for (let other = 1; other <= 8; other++) {
        if (other !== size)
          expectProofError(() => verifyInclusion(leaf, index, size, proof, rootOf(other)), 'ROOT_MISMATCH');
      }
      // Wrong leaf.
      for (let other = 0; other < 8; other++) {
        if (other !== index)
          expectProofError(() => verifyInclusion(leaves[other]!, index, size, proof, root), 'ROOT_MISMATCH');
      }
      // Truncated and extended proofs.
      for (let cut = 0; cut < proof.length; cut++) {
        expectProofError(() => verifyInclusion(leaf, index, size, proof.slice(0, cut), root), 'WRONG_PROOF_LENGTH');
      }
      expectProofError(() => verifyInclusion(leaf, index, size, [...proof, leaf], root), 'WRONG_PROOF_LENGTH');
      expectProofError(() => verifyInclusion(leaf, index, size, [...proof, root], root), 'WRONG_PROOF_LENGTH');
      if (proof.length > 0) {
        expect(checkInclusion(leaf, index, size, [leaf, ...proof], root).ok).toBe(false);
      }
      // Every single-bit flip of every proof hash, of the leaf and of the root (outcomes collected, then asserted
      // once: one expect per flip would make this battery slow without checking more).
      const outcomes: string[] = [];
      proof.forEach((_, k) => {
        for (let bit = 0; bit < 256; bit++) {
          const bad = proof.slice();
          bad[k] = flipBit(proof[k]!, bit);
          outcomes.push(outcome(checkInclusion(leaf, index, size, bad, root)));
        }
      });
      for (let bit = 0; bit < 256; bit++) {
        outcomes.push(outcome(checkInclusion(flipBit(leaf, bit), index, size, proof, root)));
        outcomes.push(outcome(checkInclusion(leaf, index, size, proof, flipBit(root, bit))));
      }
      expect(outcomes).toHaveLength(256 * (proof.length + 2));
      expect([...new Set(outcomes)]).toEqual(['ROOT_MISMATCH']);
      // Malformed hashes.
      expectProofError(() => verifyInclusion(leaf.subarray(1), index, size, proof, root), 'BAD_HASH_LENGTH');
      if (proof.length > 0) {
        expectProofError(
          () => verifyInclusion(leaf, index, size, [proof[0]!.subarray(0, 31), ...proof.slice(1)], root),
          'BAD_HASH_LENGTH',
        );
      }
    },
  );

  it('refuses non-integer and negative positions', () => {
    const proof = inclusionProof(leaves, 1, 5);
    expectProofError(() => rootFromInclusionProof(leaves[1]!, 1.5, 5, proof), 'INDEX_OUT_OF_RANGE');
    expectProofError(() => rootFromInclusionProof(leaves[1]!, -1, 5, proof), 'INDEX_OUT_OF_RANGE');
    expectProofError(() => rootFromInclusionProof(leaves[1]!, 1, Number.NaN, proof), 'SIZE_OUT_OF_RANGE');
    expectProofError(() => rootFromInclusionProof(leaves[1]!, 0, 0, []), 'INDEX_OUT_OF_RANGE');
  });
});

describe('consistency corruption battery', () => {
  it.each(allConsistency.map((c) => [c.size1, c.size2, c.proof] as const))(
    '%i → %i: every alteration is rejected',
    (size1, size2, proof) => {
      const root1 = rootOf(size1);
      const root2 = rootOf(size2);
      expect(() => verifyConsistency(size1, size2, root1, root2, proof)).not.toThrow();

      // Wrong sizes: every other pair in range, with those sizes' real roots (see the inclusion note on sizes).
      for (let a = 1; a <= 8; a++) {
        for (let b = a; b <= 8; b++) {
          if (a !== size1 || b !== size2) expect(checkConsistency(a, b, rootOf(a), rootOf(b), proof).ok).toBe(false);
        }
      }
      expect(checkConsistency(size1, size2 * 2, root1, root2, proof).ok).toBe(false);
      expectProofError(() => verifyConsistency(size2, size1, root2, root1, proof), 'SIZE_OUT_OF_RANGE');
      // Swapped and substituted roots.
      expect(checkConsistency(size1, size2, root2, root1, proof).ok).toBe(false);
      for (let other = 1; other <= 8; other++) {
        if (other !== size1)
          expectProofError(() => verifyConsistency(size1, size2, rootOf(other), root2, proof), 'ROOT_MISMATCH');
        if (other !== size2)
          expectProofError(() => verifyConsistency(size1, size2, root1, rootOf(other), proof), 'ROOT_MISMATCH');
      }
      // Truncated and extended proofs.
      for (let cut = 0; cut < proof.length; cut++) {
        expectProofError(
          () => verifyConsistency(size1, size2, root1, root2, proof.slice(0, cut)),
          'WRONG_PROOF_LENGTH',
        );
      }
      expectProofError(() => verifyConsistency(size1, size2, root1, root2, [...proof, root2]), 'WRONG_PROOF_LENGTH');
      expect(checkConsistency(size1, size2, root1, root2, [root1, ...proof]).ok).toBe(false);
      // Every single-bit flip of every proof hash and of both roots.
      const outcomes: string[] = [];
      proof.forEach((_, k) => {
        for (let bit = 0; bit < 256; bit++) {
          const bad = proof.slice();
          bad[k] = flipBit(proof[k]!, bit);
          outcomes.push(outcome(checkConsistency(size1, size2, root1, root2, bad)));
        }
      });
      for (let bit = 0; bit < 256; bit++) {
        outcomes.push(outcome(checkConsistency(size1, size2, flipBit(root1, bit), root2, proof)));
        outcomes.push(outcome(checkConsistency(size1, size2, root1, flipBit(root2, bit), proof)));
      }
      expect(outcomes).toHaveLength(256 * (proof.length + 2));
      expect([...new Set(outcomes)]).toEqual(['ROOT_MISMATCH']);
    },
  );

  it('needs an empty proof and equal roots for equal sizes', () => {
    expect(() => verifyConsistency(5, 5, rootOf(5), rootOf(5), [])).not.toThrow();
    expectProofError(() => verifyConsistency(5, 5, rootOf(5), rootOf(6), []), 'ROOT_MISMATCH');
    expectProofError(() => verifyConsistency(5, 5, rootOf(5), rootOf(5), [rootOf(1)]), 'WRONG_PROOF_LENGTH');
    expectProofError(() => verifyConsistency(3, 5, rootOf(3), rootOf(5), []), 'WRONG_PROOF_LENGTH');
    expectProofError(() => verifyConsistency(-1, 5, rootOf(3), rootOf(5), []), 'SIZE_OUT_OF_RANGE');
  });
});
