/**
 * The audit log's storage port: leaves (canonical entry bytes + query columns), the perfect-subtree nodes of
 * compact-tree.ts, one head record {size, root, token} advanced by compare-and-set, and the signed tree heads.
 *
 * Write protocol (one writer, fenced): `fence(token)` first raises the head's token to the writer's lease token
 * (refusing a smaller one) and clears uncommitted leftovers of older writers; then each `append` writes leaves
 * and nodes idempotently by index and advances the head LAST, by compare-and-set on the expected size and on
 * the token. Anything above the head is uncommitted: readers never see it.
 */
import type { SignedTreeHead } from '@sealpost/audit-format';
import type { NodeReader, StoredNode } from '../domain';

/** The committed state of the log. `token` is the fencing token of the last writer that moved it. */
export interface LogHead {
  readonly size: number;
  /** Root hash of the first `size` leaves (the empty root for 0). */
  readonly root: Buffer;
  readonly token: number;
}

/** One leaf to append: canonical bytes, their leaf hash and the columns queries use (ids and codes only). */
export interface NewLeaf {
  readonly index: number;
  readonly entryId: string;
  readonly canonical: Buffer;
  readonly leafHash: Buffer;
  readonly tenantId: string;
  readonly actorId: string;
  readonly action: string;
  readonly resourceIds: readonly string[];
  /** Milliseconds since the epoch. */
  readonly occurredAt: number;
}

/** A committed leaf as read back. The canonical bytes are the truth; decode them for the fields. */
export interface StoredLeaf {
  readonly index: number;
  readonly entryId: string;
  readonly canonical: Buffer;
  readonly leafHash: Buffer;
}

/** See AuditLogStore.readVerifyPage. */
export interface VerifyPage {
  /** Entries found in the range, and whether they are exactly the indices [start, start + count) with no gap. */
  readonly count: number;
  readonly contiguous: boolean;
  /** The canonical bytes of those entries, in index order, back to back. */
  readonly bytes: Buffer;
  /** Byte length of each entry in `bytes`. */
  readonly lengths: readonly number[];
  /** Stored leaf hashes (level-0 nodes) of the same range, 32 bytes each, in index order. */
  readonly leafHashes: Buffer;
  readonly leafHashCount: number;
}

/** One grouped append: leaves [expectedSize, expectedSize + leaves.length) plus every node they complete. */
export interface AppendBatch {
  readonly expectedSize: number;
  /** The writer's fencing token (its lease token). */
  readonly token: number;
  readonly leaves: readonly NewLeaf[];
  /** `appendLeaves(...).newNodes` (level-0 nodes included). */
  readonly nodes: readonly StoredNode[];
  /** Root of the tree after the batch. */
  readonly newRoot: Buffer;
}

/** Query by any combination of fields; results in index order. */
export interface EntryQuery {
  readonly tenantId?: string;
  readonly actorId?: string;
  /** Matches entries whose resourceIds contain it (e.g. a contact id). */
  readonly resourceId?: string;
  readonly action?: string;
  /** Inclusive lower bound on occurredAt (ms). */
  readonly fromMs?: number;
  /** Exclusive upper bound on occurredAt (ms). */
  readonly toMs?: number;
  readonly pageSize: number;
  /** From a previous page's `nextPageToken`; opaque. */
  readonly pageToken?: string;
}

export interface EntryPage {
  readonly entries: readonly StoredLeaf[];
  /** Empty when there is no further page. */
  readonly nextPageToken: string;
}

/** A signed tree head as stored (and as written to the witness). */
export type StoredTreeHead = SignedTreeHead;

export interface AuditLogStore extends NodeReader {
  readHead(): Promise<LogHead>;
  /**
   * Raises the head's token to `token` (same size and root) and removes uncommitted leftovers above the head.
   * Throws AuditStoreError FENCED when the head already carries a larger token.
   */
  fence(token: number): Promise<LogHead>;
  /**
   * Writes a batch and advances the head by CAS, last. Throws AuditStoreError HEAD_CONFLICT (head size is not
   * `expectedSize`), FENCED (the head carries a larger token), LEAF_CONFLICT (another leaf, node or entry id is
   * already stored where this batch writes) or INVALID_BATCH. On any throw the head is unchanged.
   */
  append(batch: AppendBatch): Promise<LogHead>;
  /** Committed leaves [start, end) (end clamped to the head), in index order. */
  getEntries(start: number, end: number): Promise<StoredLeaf[]>;
  /** A committed leaf by entry id. */
  findByEntryId(entryId: string): Promise<StoredLeaf | undefined>;
  /** Which of `entryIds` are already committed. */
  existingEntryIds(entryIds: readonly string[]): Promise<Set<string>>;
  /** Committed entries matching `query`, one page in index order. Throws AuditStoreError INVALID_QUERY. */
  queryEntries(query: EntryQuery): Promise<EntryPage>;
  /** Stores a signed tree head; storing the same head twice is a no-op. */
  putTreeHead(head: StoredTreeHead): Promise<void>;
  /** The newest stored head (largest size, then newest timestamp). */
  latestTreeHead(): Promise<StoredTreeHead | undefined>;
  /** The newest stored head of exactly `treeSize`. */
  treeHeadOfSize(treeSize: number): Promise<StoredTreeHead | undefined>;
  /** Every stored head, by size then timestamp. */
  listTreeHeads(): Promise<StoredTreeHead[]>;
  /**
   * Stored leaf hashes (level-0 nodes) for committed indices [start, end) (end clamped to the head), in index
   * order; a missing node is `undefined`. One range read: verification compares them with the entries.
   */
  getLeafHashes(start: number, end: number): Promise<(Buffer | undefined)[]>;
  /**
   * Optional fast path for verification: one page of committed entries [start, end) (end clamped to the head) with
   * their stored leaf hashes, as two concatenated buffers — no object per entry. Verification falls back to
   * getEntries + getLeafHashes when a store lacks it or a page is irregular.
   */
  readVerifyPage?(start: number, end: number): Promise<VerifyPage>;
  /** Entries below this index were pruned (their bytes and query columns are gone; their tree nodes stay). */
  prunedBefore(): Promise<number>;
  /**
   * Retention: records `end` as the prune point (never lowered), then removes the entries' bytes and query
   * columns below it. Tree nodes and tree heads are kept. Throws AuditStoreError INVALID_BATCH when `end` is
   * beyond the head. Returns the prune point now in force.
   */
  pruneEntries(end: number): Promise<number>;
  close(): Promise<void>;
}

export type AuditStoreErrorCode =
  'HEAD_CONFLICT' | 'FENCED' | 'LEAF_CONFLICT' | 'INVALID_BATCH' | 'INVALID_QUERY' | 'CORRUPT';

/** A store refusal with a stable code; messages carry sizes, indices and tokens only. */
export class AuditStoreError extends Error {
  override readonly name = 'AuditStoreError';
  constructor(
    readonly code: AuditStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Checks a batch's shape (contiguous indices from expectedSize, hashes present); throws INVALID_BATCH. */
export function checkAppendBatch(batch: AppendBatch): void {
  const bad = (why: string): never => {
    throw new AuditStoreError('INVALID_BATCH', `append batch at ${batch.expectedSize}: ${why}`);
  };
  if (!Number.isSafeInteger(batch.expectedSize) || batch.expectedSize < 0) bad('expected size is not a count');
  if (!Number.isSafeInteger(batch.token) || batch.token < 1) bad('token must be a positive integer');
  if (batch.leaves.length === 0) bad('no leaves');
  batch.leaves.forEach((l, i) => {
    if (l.index !== batch.expectedSize + i) bad(`leaf ${i} has index ${l.index}`);
    if (l.leafHash.length !== 32) bad(`leaf ${i} hash is not 32 bytes`);
  });
  if (batch.newRoot.length !== 32) bad('root is not 32 bytes');
  const end = batch.expectedSize + batch.leaves.length;
  for (const n of batch.nodes) {
    if ((n.index + 1) * 2 ** n.level > end || (n.index + 1) * 2 ** n.level <= batch.expectedSize) {
      bad(`node (${n.level}, ${n.index}) is not completed by this batch`);
    }
  }
}

/** Checks a prune point against the head; throws INVALID_BATCH. */
export function checkPrunePoint(end: number, headSize: number): void {
  if (!Number.isSafeInteger(end) || end < 0 || end > headSize) {
    throw new AuditStoreError('INVALID_BATCH', `prune point ${String(end)} is outside [0, ${headSize}]`);
  }
}

/** Page tokens: the last returned index, base64url-encoded (opaque to clients). */
export function encodePageToken(lastIndex: number): string {
  return Buffer.from(`i:${lastIndex}`, 'utf8').toString('base64url');
}

/** Parses a page token; throws AuditStoreError INVALID_QUERY. Returns -1 for none. */
export function decodePageToken(token: string | undefined): number {
  if (token === undefined || token === '') return -1;
  const m = /^i:(\d{1,16})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n)) throw new AuditStoreError('INVALID_QUERY', 'page token is not valid');
  return n;
}

export const MAX_PAGE_SIZE = 1000;

/** Checks query bounds; throws INVALID_QUERY. */
export function checkEntryQuery(q: EntryQuery): void {
  if (!Number.isSafeInteger(q.pageSize) || q.pageSize < 1 || q.pageSize > MAX_PAGE_SIZE) {
    throw new AuditStoreError('INVALID_QUERY', `page size must be 1–${MAX_PAGE_SIZE}`);
  }
  for (const v of [q.fromMs, q.toMs]) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
      throw new AuditStoreError('INVALID_QUERY', 'time bounds must be non-negative integer milliseconds');
    }
  }
}
