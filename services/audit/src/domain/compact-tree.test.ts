import { createHash } from 'node:crypto';
import {
  CachedNodeReader,
  MemoryNodeStore,
  type NodeId,
  type NodeReader,
  TreeError,
  appendLeaves,
  consistencyProofFromStore,
  emptyFrontier,
  flatIndex,
  frontierFromStore,
  frontierRoot,
  inclusionProofFromStore,
  nodesOf,
  planConsistencyProof,
  planInclusionProof,
  planRoot,
  rootFromStore,
} from './compact-tree';
import {
  ProofError,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  merkleTreeHash,
  verifyConsistency,
  verifyInclusion,
} from '@sealpost/audit-format';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map(hex);

function makeLeaves(n: number, seed = 'leaf'): Buffer[] {
  return Array.from({ length: n }, (_, i) => leafHash(createHash('sha256').update(`${seed}-${i}`).digest()));
}

/** Wraps a store, counting reads, so tests can show proofs read O(log n) nodes and never scan. */
class CountingReader implements NodeReader {
  reads = 0;
  calls = 0;
  constructor(private readonly inner: NodeReader) {}
  get(level: number, index: number): ReturnType<NodeReader['get']> {
    this.reads += 1;
    this.calls += 1;
    return this.inner.get(level, index);
  }
  getMany(ids: readonly NodeId[]): ReturnType<NodeReader['getMany']> {
    this.reads += ids.length;
    this.calls += 1;
    return this.inner.getMany(ids);
  }
}

async function rejectsWith(
  p: Promise<unknown>,
  cls: typeof ProofError | typeof TreeError,
  code: string,
): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  expect((err as { code: string }).code).toBe(code);
}

const N = 70;
const leaves = makeLeaves(N);

// Built one leaf at a time, so every intermediate frontier is checked too.
const store = new MemoryNodeStore();
const frontiers = [emptyFrontier()];
const nodesPerAppend: number[] = [];
for (const leaf of leaves) {
  const { newNodes, newFrontier } = appendLeaves(frontiers[frontiers.length - 1]!, [leaf]);
  store.put(newNodes);
  nodesPerAppend.push(newNodes.length);
  frontiers.push(newFrontier);
}

describe('appendLeaves', () => {
  it('keeps a frontier whose root is the RFC 6962 root after every append (sizes 0..70)', () => {
    frontiers.forEach((f, size) => {
      expect(f.size).toBe(size);
      expect(hex(frontierRoot(f))).toBe(hex(merkleTreeHash(leaves.slice(0, size))));
      // One frontier node per set bit of the size.
      expect(f.nodes).toHaveLength(size.toString(2).replace(/0/g, '').length);
    });
  });

  it('stores each perfect subtree exactly once, under the documented (level, index) id, fewer than 2n in all', () => {
    expect(store.count).toBe(2 * N - frontiers[N]!.nodes.length);
    for (let level = 0; 2 ** level <= N; level++) {
      const span = 2 ** level;
      for (let index = 0; (index + 1) * span <= N; index++) {
        expect(hex(store.get(level, index)!)).toBe(hex(merkleTreeHash(leaves, index * span, (index + 1) * span)));
      }
      // Incomplete subtrees are never stored.
      expect(store.get(level, Math.floor(N / span))).toBeUndefined();
    }
  });

  it('costs O(log n) new nodes per append: one leaf plus one per closed subtree', () => {
    nodesPerAppend.forEach((count, i) => {
      const trailingOnes = i.toString(2).length - i.toString(2).replace(/1+$/, '').length;
      expect(count).toBe(1 + trailingOnes);
    });
  });

  it('gives the same nodes and frontier whether leaves come one by one or in batches', () => {
    let f = emptyFrontier();
    const batched = new MemoryNodeStore();
    for (const [from, to] of [
      [0, 1],
      [1, 9],
      [9, 33],
      [33, 34],
      [34, 70],
    ] as const) {
      const out = appendLeaves(f, leaves.slice(from, to));
      batched.put(out.newNodes);
      f = out.newFrontier;
    }
    expect(batched.count).toBe(store.count);
    expect(f.nodes.map((n) => [n.level, n.index, hex(n.hash)])).toEqual(
      frontiers[N]!.nodes.map((n) => [n.level, n.index, hex(n.hash)]),
    );
  });

  it('refuses a malformed frontier or leaf hash, returning nothing to store', () => {
    const f = frontiers[5]!;
    const bad = (fn: () => unknown, code: string): void => {
      let caught: unknown;
      try {
        fn();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(TreeError);
      expect((caught as TreeError).code).toBe(code);
    };
    bad(() => appendLeaves({ size: 6, nodes: f.nodes }, [leaves[5]!]), 'INVALID_FRONTIER');
    bad(() => appendLeaves({ size: 5, nodes: f.nodes.slice().reverse() }, [leaves[5]!]), 'INVALID_FRONTIER');
    bad(
      () => appendLeaves({ size: 5, nodes: [f.nodes[0]!, { ...f.nodes[1]!, hash: Buffer.alloc(31) }] }, []),
      'INVALID_FRONTIER',
    );
    bad(() => appendLeaves(f, [leaves[5]!, Buffer.alloc(33)]), 'BAD_LEAF_HASH');
  });

  it('refuses to overwrite a stored node with another hash (nodes are immutable)', () => {
    const s = new MemoryNodeStore();
    const { newNodes } = appendLeaves(emptyFrontier(), leaves.slice(0, 2));
    s.put(newNodes);
    s.put(newNodes); // idempotent re-write
    expect(() => s.put([{ level: 1, index: 0, hash: leaves[9]! }])).toThrow(TreeError);
    expect(hex(s.get(1, 0)!)).toBe(hex(newNodes[2]!.hash));
  });
});

describe('roots and proofs from stored perfect subtrees', () => {
  it('computes the root of every size ≤ current from stored nodes only', async () => {
    for (let size = 0; size <= N; size++) {
      const reader = new CountingReader(store);
      expect(hex(await rootFromStore(reader, size, N))).toBe(hex(merkleTreeHash(leaves.slice(0, size))));
      expect(reader.reads).toBe(nodesOf(planRoot(size)).length);
      expect(reader.reads).toBeLessThanOrEqual(7);
    }
    expect(hex(await rootFromStore(store, 0, 0))).toBe(hex(emptyRoot()));
  });

  it('produces the reference inclusion proof for every (index, size) with size ≤ 70, in one batched read', async () => {
    for (let size = 1; size <= N; size++) {
      const root = merkleTreeHash(leaves.slice(0, size));
      for (let index = 0; index < size; index++) {
        const reader = new CountingReader(store);
        const proof = await inclusionProofFromStore(reader, index, size, N);
        expect(hexes(proof)).toEqual(hexes(inclusionProof(leaves, index, size)));
        expect(() => verifyInclusion(leaves[index]!, index, size, proof, root)).not.toThrow();
        expect(reader.calls).toBeLessThanOrEqual(1);
        expect(reader.reads).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)));
      }
    }
  });

  it('produces the reference consistency proof for every pair size1 ≤ size2 ≤ 70', async () => {
    for (let size2 = 0; size2 <= N; size2++) {
      for (let size1 = 0; size1 <= size2; size1++) {
        const reader = new CountingReader(store);
        const proof = await consistencyProofFromStore(reader, size1, size2, N);
        expect(hexes(proof)).toEqual(hexes(consistencyProof(leaves, size1, size2)));
        const r1 = merkleTreeHash(leaves.slice(0, size1));
        const r2 = merkleTreeHash(leaves.slice(0, size2));
        expect(() => verifyConsistency(size1, size2, r1, r2, proof)).not.toThrow();
        expect(reader.reads).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(Math.max(size2, 2))) + 1);
      }
    }
  });

  it('matches the reference for random (index, size) pairs in a larger tree', async () => {
    const big = makeLeaves(1500, 'big');
    let f = emptyFrontier();
    const s = new MemoryNodeStore();
    for (let from = 0; from < big.length; from += 97) {
      const out = appendLeaves(f, big.slice(from, from + 97));
      s.put(out.newNodes);
      f = out.newFrontier;
    }
    // Deterministic pseudo-random pairs (a fixed LCG) so a failure reproduces.
    let x = 12345;
    const rand = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    for (let k = 0; k < 60; k++) {
      const size = 1 + rand(big.length);
      const index = rand(size);
      const size1 = rand(size + 1);
      expect(hexes(await inclusionProofFromStore(s, index, size, big.length))).toEqual(
        hexes(inclusionProof(big, index, size)),
      );
      expect(hexes(await consistencyProofFromStore(s, size1, size, big.length))).toEqual(
        hexes(consistencyProof(big, size1, size)),
      );
      expect(hex(await rootFromStore(s, size, big.length))).toBe(hex(merkleTreeHash(big.slice(0, size))));
    }
  });

  it('rebuilds the appender frontier from the store', async () => {
    for (const size of [0, 1, 2, 7, 8, 45, 70]) {
      const f = await frontierFromStore(store, size);
      expect(f.nodes.map((n) => [n.level, n.index, hex(n.hash)])).toEqual(
        frontiers[size]!.nodes.map((n) => [n.level, n.index, hex(n.hash)]),
      );
    }
  });

  it('refuses sizes beyond the current tree and indices beyond the size', async () => {
    await rejectsWith(rootFromStore(store, N + 1, N), ProofError, 'SIZE_OUT_OF_RANGE');
    await rejectsWith(inclusionProofFromStore(store, 3, N + 1, N), ProofError, 'SIZE_OUT_OF_RANGE');
    await rejectsWith(inclusionProofFromStore(store, 10, 10, N), ProofError, 'INDEX_OUT_OF_RANGE');
    await rejectsWith(consistencyProofFromStore(store, 11, 10, N), ProofError, 'SIZE_OUT_OF_RANGE');
    await rejectsWith(consistencyProofFromStore(store, 10, N + 1, N), ProofError, 'SIZE_OUT_OF_RANGE');
    expect(() => planInclusionProof(0, 0)).toThrow(ProofError);
    expect(() => planConsistencyProof(2, 1)).toThrow(ProofError);
  });

  it('fails closed on a missing or malformed stored node', async () => {
    const holey: NodeReader = {
      get: (level, index) => (level === 2 && index === 1 ? undefined : store.get(level, index)),
      getMany: (ids) => ids.map((id) => (id.level === 2 && id.index === 1 ? undefined : store.get(id.level, id.index))),
    };
    await rejectsWith(inclusionProofFromStore(holey, 0, 16, N), TreeError, 'NODE_MISSING');
    const short: NodeReader = { get: () => Buffer.alloc(16), getMany: (ids) => ids.map(() => Buffer.alloc(16)) };
    await rejectsWith(rootFromStore(short, 5, N), TreeError, 'BAD_NODE_HASH');
    const truncated: NodeReader = { get: () => undefined, getMany: () => [] };
    await rejectsWith(rootFromStore(truncated, 5, N), TreeError, 'NODE_MISSING');
  });

  it('reads the stored node hashes, so a tampered stored node changes the proof and it no longer verifies', async () => {
    const tampered: NodeReader = {
      get: (level, index) => store.get(level, index),
      getMany: (ids) =>
        ids.map((id) => (id.level === 2 && id.index === 0 ? leaves[0]! : store.get(id.level, id.index))),
    };
    const proof = await inclusionProofFromStore(tampered, 5, 8, N);
    expect(() => verifyInclusion(leaves[5]!, 5, 8, proof, merkleTreeHash(leaves.slice(0, 8)))).toThrow(ProofError);
  });
});

describe('flatIndex', () => {
  it('gives every node id a distinct integer', () => {
    const seen = new Set<number>();
    let ids = 0;
    for (let level = 0; level < 12; level++) {
      for (let index = 0; index < 2 ** (12 - level); index++, ids++) seen.add(flatIndex(level, index));
    }
    expect(seen.size).toBe(ids);
    expect(flatIndex(0, 0)).toBe(0);
    expect(flatIndex(1, 0)).toBe(1);
    expect(flatIndex(0, 1)).toBe(2);
  });
});

describe('CachedNodeReader', () => {
  /** A MemoryNodeStore that counts the nodes it is asked for, answering asynchronously like a remote store. */
  class CountingStore implements NodeReader {
    reads = 0;
    constructor(readonly inner: MemoryNodeStore) {}
    async get(level: number, index: number): Promise<Uint8Array | undefined> {
      this.reads += 1;
      return this.inner.get(level, index);
    }
    async getMany(ids: readonly NodeId[]): Promise<(Uint8Array | undefined)[]> {
      this.reads += ids.length;
      return this.inner.getMany(ids);
    }
  }
  const hashes = Array.from({ length: 300 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
  const mem = new MemoryNodeStore();
  mem.put(appendLeaves(emptyFrontier(), hashes).newNodes);

  it('serves the same proofs as the store, reading the upper levels only once', async () => {
    const counting = new CountingStore(mem);
    const cached = new CachedNodeReader(counting, 2);
    for (const i of [0, 17, 128, 255, 299]) {
      expect(await inclusionProofFromStore(cached, i, 300, 300)).toEqual(
        await inclusionProofFromStore(mem, i, 300, 300),
      );
      expect(await consistencyProofFromStore(cached, i + 1, 300, 300)).toEqual(
        await consistencyProofFromStore(mem, i + 1, 300, 300),
      );
    }
    const firstPass = counting.reads;
    for (const i of [0, 17, 128, 255, 299]) await inclusionProofFromStore(cached, i, 300, 300);
    // Second pass: levels ≥ 2 come from memory, only the two lowest levels are read again.
    expect(counting.reads - firstPass).toBeLessThanOrEqual(5 * 2);
    expect(cached.size).toBeGreaterThan(0);
  });

  it('never caches a missing node (it is reported each time) and stays within its bound', async () => {
    const sparse = new MemoryNodeStore();
    const cached = new CachedNodeReader(sparse, 0, 4, 30);
    await expect(inclusionProofFromStore(cached, 3, 8, 8)).rejects.toMatchObject({ code: 'NODE_MISSING' });
    expect(cached.size).toBe(0);
    const full = new CachedNodeReader(mem, 0, 4, 30);
    for (let i = 0; i < 50; i++) await inclusionProofFromStore(full, i, 300, 300);
    expect(full.size).toBeLessThanOrEqual(4);
    // Proofs handed out are fresh buffers: changing one does not change what the next proof reads.
    const proof = await inclusionProofFromStore(full, 1, 300, 300);
    for (const p of proof) p.fill(0);
    expect(await inclusionProofFromStore(full, 1, 300, 300)).toEqual(await inclusionProofFromStore(mem, 1, 300, 300));
  });
});
