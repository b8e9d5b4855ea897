/**
 * Stored perfect subtrees: how the log keeps its Merkle tree so that an append costs O(log n) hashes and writes,
 * and any root or proof for a size ≤ the current size reads O(log n) stored nodes — never the log itself.
 *
 * Node ids
 * --------
 * A node is identified by (level, index): it is the root of the PERFECT subtree over the leaves
 *   [index · 2^level, (index + 1) · 2^level).
 * Level 0 nodes are the leaf hashes (node (0, i) = leafHash(entry i)); node (L+1, i) = nodeHash((L, 2i), (L, 2i+1)).
 * A node is stored exactly when its whole leaf range exists, i.e. when (index + 1) · 2^level ≤ size. Stored nodes
 * never change once written (later appends only add nodes), so adapters can write them idempotently by id and the
 * store holds < 2n nodes for n leaves. `flatIndex(level, index)` maps an id to one integer (in-order position
 * in an infinite binary tree: index · 2^(level+1) + 2^level − 1) for stores that want a single-column key.
 *
 * Non-perfect subtrees are never stored: their hash is recomputed from the perfect subtrees that tile them. Every
 * subtree the RFC 6962 recursion visits, [a, a+n), has `a` a multiple of the power of two ≥ n, so it is tiled by
 * the nodes for the set bits of n, highest first, and its hash is the right fold of those nodes' hashes. The tree of
 * size n is one such range, [0, n), whose tiling (the "frontier" or compact range) is also what the appender keeps.
 */
import { HASH_SIZE, ProofError, emptyRoot, isCount, nodeHash, splitPoint } from '@sealpost/audit-format';

/** Identifies the perfect subtree over leaves [index·2^level, (index+1)·2^level). */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A node hash to store under its id. */
export interface StoredNode extends NodeId {
  readonly hash: Buffer;
}

type Awaitable<T> = T | PromiseLike<T>;

/**
 * Read access to stored node hashes, implemented by storage adapters. A missing node is `undefined`;
 * `getMany` answers in request order (one round trip per proof).
 */
export interface NodeReader {
  get(level: number, index: number): Awaitable<Uint8Array | undefined>;
  getMany(ids: readonly NodeId[]): Awaitable<readonly (Uint8Array | undefined)[]>;
}

/** The perfect subtrees tiling [0, size), highest level first — all an appender needs to keep in memory. */
export interface Frontier {
  readonly size: number;
  readonly nodes: readonly StoredNode[];
}

export type TreeErrorCode = 'INVALID_FRONTIER' | 'NODE_MISSING' | 'BAD_NODE_HASH' | 'BAD_LEAF_HASH';

/** The stored tree is incomplete or inconsistent (a missing or malformed node), or a frontier is malformed. */
export class TreeError extends Error {
  override readonly name = 'TreeError';
  constructor(
    readonly code: TreeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One integer per node id: the in-order position index·2^(level+1) + 2^level − 1 (exact below 2^53). */
export function flatIndex(level: number, index: number): number {
  const span = 2 ** level;
  return index * span * 2 + span - 1;
}

/**
 * The perfect subtrees tiling [start, end), highest first. Only valid for ranges the RFC recursion visits
 * (start a multiple of the power of two ≥ end − start); anything else is a programming error.
 */
export function rangeNodes(start: number, end: number): NodeId[] {
  const out: NodeId[] = [];
  let len = end - start;
  if (len <= 0) return out;
  let pos = start;
  let span = splitPoint(len + 1).size; // largest power of two ≤ len
  let level = Math.log2(span);
  for (; len > 0; span /= 2, level -= 1) {
    if (len < span) continue;
    if (pos % span !== 0) throw new Error(`range [${start}, ${end}) is not tiled by aligned perfect subtrees`);
    out.push({ level, index: pos / span });
    pos += span;
    len -= span;
  }
  return out;
}

/** Hash of a tiled range: right fold of its perfect subtree hashes (the MTH of that range). */
export function foldRange(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return emptyRoot();
  let r: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) r = nodeHash(hashes[i]!, r);
  return r;
}

/**
 * What to read for a root or proof: each part is one output hash, computed as the right fold of its nodes.
 * Exposed so an adapter can prefetch `nodesOf(plan)` itself (e.g. inside a read transaction).
 */
export type HashPlan = readonly (readonly NodeId[])[];

/** Every node a plan reads, in order (a plan reads at most ~2·log2(n) nodes). */
export function nodesOf(plan: HashPlan): NodeId[] {
  const out: NodeId[] = [];
  for (const part of plan) for (const id of part) out.push(id); // Array.prototype.flat is slow on the proof path
  return out;
}

/** Turns the hashes of `nodesOf(plan)` (same order) into the plan's output hashes. */
export function resolvePlan(plan: HashPlan, hashes: readonly Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const part of plan) {
    out.push(foldRange(hashes.slice(at, at + part.length)));
    at += part.length;
  }
  return out;
}

/** Plan for the root of the tree of `size` leaves (size 0 → no parts; its root is the empty root). */
export function planRoot(size: number): HashPlan {
  if (!isCount(size)) throw new ProofError('SIZE_OUT_OF_RANGE', 'tree size is not a non-negative integer');
  return size === 0 ? [] : [rangeNodes(0, size)];
}

/** Plan for PATH(index, D[size]), leaf level first. Throws ProofError INDEX_OUT_OF_RANGE / SIZE_OUT_OF_RANGE. */
export function planInclusionProof(index: number, size: number): HashPlan {
  if (!isCount(size)) throw new ProofError('SIZE_OUT_OF_RANGE', 'tree size is not a non-negative integer');
  if (!isCount(index) || index >= size) {
    throw new ProofError('INDEX_OUT_OF_RANGE', `leaf index ${String(index)} is outside [0, ${size})`);
  }
  // The RFC recursion unrolled top-down; its output is bottom-up, hence the final reverse.
  const parts: NodeId[][] = [];
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k.size) {
      parts.push(rangeNodes(start + k.size, start + n));
      n = k.size;
    } else {
      parts.push([{ level: k.level, index: start / k.size }]);
      start += k.size;
      m -= k.size;
      n -= k.size;
    }
  }
  return parts.reverse();
}

/** Plan for PROOF(size1, D[size2]); empty when size1 is 0 or equals size2. Throws ProofError SIZE_OUT_OF_RANGE. */
export function planConsistencyProof(size1: number, size2: number): HashPlan {
  if (!isCount(size1) || !isCount(size2) || size1 > size2) {
    throw new ProofError('SIZE_OUT_OF_RANGE', `sizes ${String(size1)} → ${String(size2)} are not 0 ≤ size1 ≤ size2`);
  }
  if (size1 === 0 || size1 === size2) return [];
  const parts: NodeId[][] = [];
  let start = 0;
  let n = size2;
  let m = size1;
  let whole = true; // SUBPROOF's b: still on the path where the old tree is a complete left part
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k.size) {
      parts.push(rangeNodes(start + k.size, start + n));
      n = k.size;
    } else {
      parts.push([{ level: k.level, index: start / k.size }]);
      start += k.size;
      m -= k.size;
      n -= k.size;
      whole = false;
    }
  }
  if (!whole) parts.push(rangeNodes(start, start + m));
  return parts.reverse();
}

/** The empty tree's frontier. */
export function emptyFrontier(): Frontier {
  return { size: 0, nodes: [] };
}

function checkHash(h: unknown, code: TreeErrorCode, what: string): asserts h is Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new TreeError(code, `${what} is not a ${HASH_SIZE}-byte hash`);
  }
}

/** Throws TreeError INVALID_FRONTIER unless `frontier.nodes` are exactly the tiling of [0, size). */
export function assertFrontier(frontier: Frontier): void {
  if (!isCount(frontier.size)) throw new TreeError('INVALID_FRONTIER', 'frontier size is not a non-negative integer');
  const expected = rangeNodes(0, frontier.size);
  if (frontier.nodes.length !== expected.length) {
    throw new TreeError('INVALID_FRONTIER', `frontier of size ${frontier.size} must hold ${expected.length} nodes`);
  }
  expected.forEach((id, i) => {
    const node = frontier.nodes[i]!;
    if (node.level !== id.level || node.index !== id.index) {
      throw new TreeError('INVALID_FRONTIER', `frontier node ${i} is not (${id.level}, ${id.index})`);
    }
    checkHash(node.hash, 'INVALID_FRONTIER', `frontier node ${i}`);
  });
}

/**
 * Appends leaf hashes: returns every node that becomes complete (each leaf, then each perfect parent it closes,
 * in dependency order) and the new frontier. Pure; the caller stores `newNodes` and keeps `newFrontier`.
 * Throws TreeError INVALID_FRONTIER or BAD_LEAF_HASH, in which case nothing is returned to store.
 */
export function appendLeaves(
  frontier: Frontier,
  leafHashes: readonly Uint8Array[],
): { newNodes: StoredNode[]; newFrontier: Frontier } {
  assertFrontier(frontier);
  leafHashes.forEach((h, i) => checkHash(h, 'BAD_LEAF_HASH', `leaf hash ${i}`));
  const stack: StoredNode[] = frontier.nodes.slice();
  const newNodes: StoredNode[] = [];
  let size = frontier.size;
  for (const h of leafHashes) {
    const leaf: StoredNode = { level: 0, index: size, hash: Buffer.from(h) };
    newNodes.push(leaf);
    stack.push(leaf);
    size += 1;
    // Two trailing nodes of equal level are siblings whose parent just became complete.
    while (stack.length >= 2 && stack[stack.length - 1]!.level === stack[stack.length - 2]!.level) {
      const right = stack.pop()!;
      const left = stack.pop()!;
      const parent: StoredNode = {
        level: left.level + 1,
        index: left.index / 2,
        hash: nodeHash(left.hash, right.hash),
      };
      newNodes.push(parent);
      stack.push(parent);
    }
  }
  return { newNodes, newFrontier: { size, nodes: stack } };
}

/** Root of the tree a frontier describes. */
export function frontierRoot(frontier: Frontier): Buffer {
  return foldRange(frontier.nodes.map((n) => n.hash));
}

async function readNodes(reader: NodeReader, ids: readonly NodeId[]): Promise<Uint8Array[]> {
  if (ids.length === 0) return [];
  const got = await reader.getMany(ids);
  if (!Array.isArray(got) || got.length !== ids.length) {
    throw new TreeError('NODE_MISSING', `node store answered ${String(got?.length)} of ${ids.length} nodes`);
  }
  return ids.map((id, i) => {
    const h = got[i];
    if (h === undefined) throw new TreeError('NODE_MISSING', `node (${id.level}, ${id.index}) is not stored`);
    checkHash(h, 'BAD_NODE_HASH', `node (${id.level}, ${id.index})`);
    return h;
  });
}

/** Reads and resolves a plan through a NodeReader (one `getMany`). Throws TreeError NODE_MISSING / BAD_NODE_HASH. */
export async function readPlan(reader: NodeReader, plan: HashPlan): Promise<Buffer[]> {
  return resolvePlan(plan, await readNodes(reader, nodesOf(plan)));
}

function requireWithin(size: number, currentSize: number): void {
  if (!isCount(currentSize))
    throw new ProofError('SIZE_OUT_OF_RANGE', 'current tree size is not a non-negative integer');
  if (!isCount(size) || size > currentSize) {
    throw new ProofError('SIZE_OUT_OF_RANGE', `tree size ${String(size)} is outside [0, ${currentSize}]`);
  }
}

/** Root of the tree of `size` ≤ `currentSize` leaves from stored perfect subtrees. Throws ProofError / TreeError. */
export async function rootFromStore(reader: NodeReader, size: number, currentSize: number): Promise<Buffer> {
  requireWithin(size, currentSize);
  if (size === 0) return emptyRoot();
  const [root] = await readPlan(reader, planRoot(size));
  return root!;
}

/** Inclusion proof for leaf `index` in the tree of `size` ≤ `currentSize` leaves. Throws ProofError / TreeError. */
export async function inclusionProofFromStore(
  reader: NodeReader,
  index: number,
  size: number,
  currentSize: number,
): Promise<Buffer[]> {
  requireWithin(size, currentSize);
  return readPlan(reader, planInclusionProof(index, size));
}

/** Consistency proof between sizes size1 ≤ size2 ≤ `currentSize`. Throws ProofError / TreeError. */
export async function consistencyProofFromStore(
  reader: NodeReader,
  size1: number,
  size2: number,
  currentSize: number,
): Promise<Buffer[]> {
  requireWithin(size2, currentSize);
  return readPlan(reader, planConsistencyProof(size1, size2));
}

/** Rebuilds the appender's frontier for `size` from the store (e.g. after a restart or lease takeover). */
export async function frontierFromStore(reader: NodeReader, size: number): Promise<Frontier> {
  if (!isCount(size)) throw new TreeError('INVALID_FRONTIER', 'frontier size is not a non-negative integer');
  const ids = rangeNodes(0, size);
  const hashes = await readNodes(reader, ids);
  return { size, nodes: ids.map((id, i) => ({ ...id, hash: Buffer.from(hashes[i]!) })) };
}

/** In-memory NodeReader (reference store for tests and for the embedded/dev mode). */
export class MemoryNodeStore implements NodeReader {
  private readonly nodes = new Map<number, Buffer>();

  /** Stores nodes; re-storing an id with the same hash is a no-op, with another hash a TreeError (nodes are immutable). */
  put(nodes: readonly StoredNode[]): void {
    // Check everything first so a refused batch changes nothing.
    for (const n of nodes) {
      checkHash(n.hash, 'BAD_NODE_HASH', `node (${n.level}, ${n.index})`);
      const old = this.nodes.get(flatIndex(n.level, n.index));
      if (old && !old.equals(n.hash))
        throw new TreeError('BAD_NODE_HASH', `node (${n.level}, ${n.index}) already stored`);
    }
    for (const n of nodes) this.nodes.set(flatIndex(n.level, n.index), Buffer.from(n.hash));
  }

  get(level: number, index: number): Buffer | undefined {
    return this.nodes.get(flatIndex(level, index));
  }

  getMany(ids: readonly NodeId[]): (Buffer | undefined)[] {
    return ids.map((id) => this.get(id.level, id.index));
  }

  /** Number of stored nodes (< 2n for n leaves). */
  get count(): number {
    return this.nodes.size;
  }
}

/**
 * A NodeReader that keeps the upper levels of the tree in memory, for serving proofs: every proof reads the same
 * few high nodes, and a stored node never changes once written, so a cached hash stays right. Nodes at
 * `pinnedLevel` and above (n / 2^pinnedLevel of them) are kept for good; nodes from `minLevel` up to there, at most
 * `maxNodes` of them, the oldest dropped first. Verification must read the store itself, not through this: it looks
 * for nodes changed behind the writer's back.
 */
export class CachedNodeReader implements NodeReader {
  private readonly pinned = new Map<number, Uint8Array>();
  private readonly recent = new Map<number, Uint8Array>();

  constructor(
    private readonly inner: NodeReader,
    private readonly minLevel = 4,
    private readonly maxNodes = 1 << 18,
    private readonly pinnedLevel = 16,
  ) {}

  get(level: number, index: number): Awaitable<Uint8Array | undefined> {
    const hit = this.lookup(level, index);
    if (hit) return hit;
    const got = this.inner.get(level, index);
    return isThenable(got) ? got.then((h) => this.keep(level, index, h)) : this.keep(level, index, got);
  }

  getMany(ids: readonly NodeId[]): Awaitable<readonly (Uint8Array | undefined)[]> {
    const out = new Array<Uint8Array | undefined>(ids.length);
    const missing: NodeId[] = [];
    const at: number[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const hit = this.lookup(id.level, id.index);
      if (hit) out[k] = hit;
      else {
        missing.push(id);
        at.push(k);
      }
    }
    if (missing.length === 0) return out;
    const fill = (got: readonly (Uint8Array | undefined)[]): (Uint8Array | undefined)[] => {
      for (let j = 0; j < missing.length; j++) out[at[j]!] = this.keep(missing[j]!.level, missing[j]!.index, got[j]);
      return out;
    };
    const got = this.inner.getMany(missing);
    return isThenable(got) ? got.then(fill) : fill(got);
  }

  /** Cached nodes (for tests and metrics). */
  get size(): number {
    return this.pinned.size + this.recent.size;
  }

  private lookup(level: number, index: number): Uint8Array | undefined {
    if (level < this.minLevel) return undefined;
    return (level >= this.pinnedLevel ? this.pinned : this.recent).get(flatIndex(level, index));
  }

  private keep(level: number, index: number, hash: Uint8Array | undefined): Uint8Array | undefined {
    // Only well-formed hashes: a missing or malformed node must be re-read (and reported) every time.
    if (hash === undefined || level < this.minLevel || hash.length !== HASH_SIZE) return hash;
    // Our own copy: the store's buffer is not ours to keep. Like MemoryNodeStore, what get/getMany return is
    // read-only for callers (the proof functions only read it and return fresh hashes).
    const copy = Buffer.from(hash);
    if (level >= this.pinnedLevel) this.pinned.set(flatIndex(level, index), copy);
    else {
      if (this.recent.size >= this.maxNodes) this.recent.delete(this.recent.keys().next().value!);
      this.recent.set(flatIndex(level, index), copy);
    }
    return copy;
  }
}

function isThenable<T>(v: Awaitable<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}
