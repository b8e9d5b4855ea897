/**
 * Pure verification of a whole log: recompute the Merkle tree from the entries (one pass, a streaming stack of
 * perfect-subtree hashes), compare the root at every tree head's size, and report the first problem.
 *
 * What the inputs mean:
 * - entries: canonical entry bytes in index order, as read from the store (attacker-writable).
 * - heads: tree heads whose signatures were checked (or `checkTreeHead` checks them) — the log's own history.
 * - pinned: a head the verifier trusts from elsewhere (a witness, an earlier run) — it must still hold.
 * - storedLeafHashes: the level-0 nodes as stored (attacker-writable), used to point at the exact entry.
 *
 * How problems are told apart:
 * - Two heads over the same leaves are consistent exactly when both roots come out of those leaves, so checking
 *   every head against the recomputed prefix roots checks consistency between consecutive heads and the pin.
 * - A head whose root the entries do not produce, while a head of a larger (or equal) size does match them: two
 *   signed views that cannot both be right → FORK (also a replaced head). If no later head matches, the entries
 *   changed somewhere after the last matching head → STH_ROOT_MISMATCH, with that range. Heads alone cannot
 *   narrow it further; stored leaf hashes can.
 * - An entry that does not hash to its stored leaf hash is the first bad index. If the next head still matches the
 *   entries, the stored hash was altered (STORED_HASH_MISMATCH); otherwise the entry was modified, deleted,
 *   inserted or moved — told apart by the neighbouring stored hashes and the entry count.
 * - Fewer entries than a witnessed head's size → ROLLBACK.
 */
import {
  type TreeHead,
  TreeHeadError,
  emptyRoot,
  leafHash,
  leafHashAt,
  nodeHash,
  validateTreeHead,
} from '@sealpost/audit-format';

export type LogProblem =
  | 'ENTRY_MODIFIED'
  | 'ENTRY_DELETED'
  | 'ENTRY_INSERTED'
  | 'ENTRY_REORDERED'
  | 'ENTRY_INVALID'
  | 'STORED_HASH_MISMATCH'
  | 'STH_ROOT_MISMATCH'
  | 'STH_INVALID'
  | 'STH_SIGNATURE_INVALID'
  | 'ROLLBACK'
  | 'FORK';

/**
 * The first problem found. `index` is the first bad entry — exact for ENTRY_* and STORED_HASH_MISMATCH, the
 * start of the range [index, rangeEnd) it lies in for STH_ROOT_MISMATCH, the first missing entry for ROLLBACK.
 * FORK and head problems carry no index: they are about heads, not about one entry.
 */
export interface VerifyLogFailure {
  readonly ok: false;
  readonly problem: LogProblem;
  readonly index?: number;
  /** Exclusive end of the range the first bad entry lies in, when heads alone cannot pin it down. */
  readonly rangeEnd?: number;
  /** Size of the tree head involved, if any. */
  readonly treeSize?: number;
  /** One line for people: sizes, indices and head positions only. */
  readonly detail: string;
}

export interface VerifyLogSuccess {
  readonly ok: true;
  /** Number of entries verified. */
  readonly treeSize: number;
  /** Lowercase hex root of all entries. */
  readonly rootHash: string;
  /** Heads (pinned included) whose roots were recomputed and matched. */
  readonly headsChecked: number;
}

export type VerifyLogResult = VerifyLogSuccess | VerifyLogFailure;

/** Stored leaf hashes by index; a plain array of Buffers is one. */
export interface LeafHashSource {
  readonly length: number;
  at(index: number): Uint8Array | undefined;
}

export interface LogVerifierOptions {
  /** Heads with verified signatures (any order). */
  readonly heads?: readonly TreeHead[];
  /** A trusted head from outside the log's store. */
  readonly pinned?: TreeHead;
  /** Expected log id; defaults to the first head's. Heads of another log are refused. */
  readonly logId?: string;
  readonly storedLeafHashes?: LeafHashSource;
  /**
   * Start after a pruned prefix: the perfect-subtree hashes tiling [0, size), highest first (a Frontier's hashes,
   * read from stored nodes). Entries pushed then start at index `size`. Heads smaller than `size` are not checked
   * here — the caller checks them against this prefix with consistency proofs.
   */
  readonly start?: { readonly size: number; readonly nodes: readonly Uint8Array[] };
}

interface Checkpoint {
  readonly size: number;
  readonly root: Buffer;
  readonly labels: string[];
}

interface LeafPending {
  readonly index: number;
  readonly computed: Buffer;
  next?: Buffer;
  /** Whether the first head after the entry matched the recomputed root (undefined: no such head). */
  witnessed?: boolean;
  witnessSize?: number;
}

type Found = Omit<VerifyLogFailure, 'ok'>;

const fail = (f: Found): VerifyLogFailure => ({ ok: false, ...f });

/**
 * Streaming verifier: `push` entries in index order (stop when it returns false), then `finish`.
 * Hashes each entry once and keeps only O(log n) hashes besides what the caller passes in.
 */
export class LogVerifier {
  private readonly stack: Buffer[] = [];
  private size = 0;
  private readonly checkpoints: Checkpoint[] = [];
  private nextCheckpoint = 0;
  private lastMatched = 0;
  private headsChecked = 0;
  private readonly stored: LeafHashSource | undefined;
  private decided: Found | undefined;
  private leafPending: LeafPending | undefined;
  private rootPending: { readonly checkpoint: Checkpoint; readonly lo: number } | undefined;
  private mismatchAt: number | undefined;

  constructor(options: LogVerifierOptions = {}) {
    this.stored = options.storedLeafHashes;
    this.decided = this.prepareHeads(options);
    if (options.start) {
      for (const h of options.start.nodes) this.stack.push(Buffer.from(h));
      this.size = options.start.size;
      while (this.checkpoints[this.nextCheckpoint] && this.checkpoints[this.nextCheckpoint]!.size < this.size) {
        this.nextCheckpoint += 1;
      }
    }
    while (!this.decided && this.checkpoints[this.nextCheckpoint]?.size === this.size) this.checkpoint();
  }

  private prepareHeads(options: LogVerifierOptions): Found | undefined {
    const all: { head: TreeHead; label: string }[] = [];
    const raw: { head: unknown; label: string }[] = [];
    if (options.pinned !== undefined) raw.push({ head: options.pinned, label: 'pinned head' });
    (options.heads ?? []).forEach((head, k) => raw.push({ head, label: `head #${k}` }));
    for (const { head, label } of raw) {
      try {
        all.push({ head: validateTreeHead(head), label });
      } catch (err) {
        if (!(err instanceof TreeHeadError)) throw err;
        return { problem: 'STH_INVALID', detail: `${label}: ${err.message}` };
      }
    }
    const logId = options.logId ?? all[0]?.head.logId;
    const foreign = all.find((h) => h.head.logId !== logId);
    if (foreign) return { problem: 'STH_INVALID', detail: `${foreign.label} belongs to another log` };

    all.sort((a, b) => a.head.treeSize - b.head.treeSize || a.head.timestamp - b.head.timestamp);
    type Dated = { ts: number; label: string; size: number };
    let newestBelow: Dated | undefined; // newest head of a strictly smaller size
    let newestHere: Dated | undefined; // newest head of the current size
    // Two heads of one size with different roots is the most specific finding, so it wins over a dating rollback.
    let rollback: Found | undefined;
    for (const { head, label } of all) {
      const last = this.checkpoints[this.checkpoints.length - 1];
      if (last && last.size === head.treeSize) {
        if (last.root.toString('hex') !== head.rootHash) {
          return {
            problem: 'FORK',
            treeSize: head.treeSize,
            detail: `${last.labels[0]} and ${label} both have size ${head.treeSize} but different roots`,
          };
        }
        last.labels.push(label);
      } else {
        if (newestHere && (!newestBelow || newestHere.ts > newestBelow.ts)) newestBelow = newestHere;
        newestHere = undefined;
        this.checkpoints.push({ size: head.treeSize, root: Buffer.from(head.rootHash, 'hex'), labels: [label] });
      }
      // A smaller tree signed after a larger one means the log went backwards at some point.
      if (newestBelow && head.timestamp < newestBelow.ts) {
        rollback ??= {
          problem: 'ROLLBACK',
          treeSize: newestBelow.size,
          detail: `${newestBelow.label} (size ${newestBelow.size}) is dated after ${label} (size ${head.treeSize})`,
        };
      }
      if (!newestHere || head.timestamp > newestHere.ts)
        newestHere = { ts: head.timestamp, label, size: head.treeSize };
    }
    return rollback;
  }

  /** Adds the next entry; returns false once the outcome is settled and further entries change nothing. */
  push(entry: Uint8Array): boolean {
    if (this.decided) return false;
    const i = this.size;
    if (!(entry instanceof Uint8Array)) {
      this.decided = { problem: 'ENTRY_INVALID', index: i, detail: `entry ${i} is not bytes` };
      return false;
    }
    return this.pushHash(leafHash(entry));
  }

  /**
   * Fast path for stores that read entries as pages: adds the entry `bytes[start, end)` and checks its hash against
   * the stored leaf hash `stored[at, at + 32)`. Returns false once settled, or — with `storedMismatch` set and
   * nothing decided — at the first entry that differs from its stored hash; the caller then re-verifies with
   * `storedLeafHashes` to name the problem. Only for verifiers built without `storedLeafHashes`.
   */
  pushChecked(bytes: Buffer, start: number, end: number, stored: Buffer, at: number): boolean {
    if (this.decided || this.mismatchAt !== undefined) return false;
    const h = leafHashAt(bytes, start, end);
    if (h.compare(stored, at, at + 32) !== 0) {
      this.mismatchAt = this.size;
      return false;
    }
    return this.pushHash(h);
  }

  /** Set by pushChecked: the first index whose entry differs from the stored leaf hash given with it. */
  get storedMismatch(): number | undefined {
    return this.mismatchAt;
  }

  private pushHash(h: Buffer): boolean {
    const i = this.size;
    const pending = this.leafPending;
    if (pending) {
      if (pending.next === undefined) pending.next = h;
    } else if (this.stored && !this.rootPending) {
      const s = this.stored.at(i);
      if (s === undefined || !h.equals(s)) this.leafPending = { index: i, computed: h };
    }
    // Streaming stack: leaf i closes one perfect subtree per trailing 1-bit of i.
    const stack = this.stack;
    stack.push(h);
    for (let n = i; n % 2 === 1; n = (n - 1) / 2) {
      const right = stack.pop()!;
      const left = stack.pop()!;
      stack.push(nodeHash(left, right));
    }
    this.size = i + 1;
    if (this.checkpoints[this.nextCheckpoint]?.size === this.size) this.checkpoint();
    return this.decided === undefined;
  }

  /** Adds entries in order; returns false once the outcome is settled. */
  pushAll(entries: Iterable<Uint8Array>): boolean {
    for (const e of entries) if (!this.push(e)) return false;
    return this.decided === undefined;
  }

  private currentRoot(): Buffer {
    const s = this.stack;
    if (s.length === 0) return emptyRoot();
    let r = s[s.length - 1]!;
    for (let k = s.length - 2; k >= 0; k--) r = nodeHash(s[k]!, r);
    return r;
  }

  private checkpoint(): void {
    const cp = this.checkpoints[this.nextCheckpoint++]!;
    const match = this.currentRoot().equals(cp.root);
    if (match) this.headsChecked += cp.labels.length;
    const leaf = this.leafPending;
    if (leaf) {
      if (leaf.witnessed === undefined) {
        leaf.witnessed = match;
        leaf.witnessSize = cp.size;
      }
    } else if (this.rootPending) {
      if (match) {
        const bad = this.rootPending.checkpoint;
        // No index: which side holds the bad entries (if any — a replaced head has none) is not knowable here.
        this.decided = {
          problem: 'FORK',
          treeSize: bad.size,
          detail:
            `${bad.labels.join(', ')} (size ${bad.size}) is not consistent with ${cp.labels.join(', ')} (size ${cp.size}), ` +
            `which the entries match: two signed views of the log diverge before entry ${bad.size}`,
        };
      }
    } else if (match) {
      this.lastMatched = cp.size;
    } else {
      this.rootPending = { checkpoint: cp, lo: this.lastMatched };
    }
  }

  private storedIndexOf(hash: Buffer, except: number): number | undefined {
    const s = this.stored!;
    for (let j = 0; j < s.length; j++) {
      const v = s.at(j);
      if (j !== except && v !== undefined && hash.equals(v)) return j;
    }
    return undefined;
  }

  private leafFinding(p: LeafPending): Found {
    const i = p.index;
    if (p.witnessed === true) {
      return {
        problem: 'STORED_HASH_MISMATCH',
        index: i,
        treeSize: p.witnessSize,
        detail: `stored leaf hash ${i} was altered: entry ${i} matches the witnessed head of size ${String(p.witnessSize)}`,
      };
    }
    const stored = this.stored!;
    const delta = this.size - stored.length;
    const si = stored.at(i);
    const sNext = stored.at(i + 1);
    const next = p.next;
    const witness =
      p.witnessed === false ? ` (head of size ${String(p.witnessSize)} does not match)` : ' (no head covers it yet)';
    const found = (problem: LogProblem, what: string): Found => ({
      problem,
      index: i,
      detail: `entry ${i} ${what}${witness}`,
    });
    if (si === undefined) return found('ENTRY_INSERTED', 'has no stored leaf hash: it was added outside the appender');
    if (next !== undefined && next.equals(si)) {
      // The original entry i now sits at i + 1: something was put before it.
      if (delta === 1 || this.storedIndexOf(p.computed, i) === undefined)
        return found('ENTRY_INSERTED', 'was inserted');
      return found('ENTRY_REORDERED', 'is an entry moved from another position');
    }
    if (sNext !== undefined && p.computed.equals(sNext)) {
      return delta === -1
        ? found('ENTRY_DELETED', 'was deleted (later entries are shifted down)')
        : found('ENTRY_REORDERED', 'was moved to another position');
    }
    if (this.storedIndexOf(p.computed, i) !== undefined) {
      return found('ENTRY_REORDERED', 'holds an entry that belongs at another position');
    }
    return found('ENTRY_MODIFIED', 'was modified');
  }

  /** Settles the outcome after the last entry. */
  finish(): VerifyLogResult {
    if (this.decided) return fail(this.decided);
    if (this.leafPending) return fail((this.decided = this.leafFinding(this.leafPending)));
    if (this.rootPending) {
      const { checkpoint: cp, lo } = this.rootPending;
      return fail(
        (this.decided = {
          problem: 'STH_ROOT_MISMATCH',
          index: lo,
          rangeEnd: cp.size,
          treeSize: cp.size,
          detail: `entries [${lo}, ${cp.size}) do not produce the root of ${cp.labels.join(', ')} (size ${cp.size}); the first bad entry is in that range`,
        }),
      );
    }
    const witnessed = this.checkpoints[this.checkpoints.length - 1];
    if (witnessed && witnessed.size > this.size) {
      return fail(
        (this.decided = {
          problem: 'ROLLBACK',
          index: this.size,
          treeSize: witnessed.size,
          detail: `the log has ${this.size} entries but ${witnessed.labels.join(', ')} witnessed ${witnessed.size}`,
        }),
      );
    }
    if (this.stored && this.stored.length > this.size) {
      return fail(
        (this.decided = {
          problem: 'ENTRY_DELETED',
          index: this.size,
          detail: `stored leaf hashes go up to ${this.stored.length} but entries stop at ${this.size}`,
        }),
      );
    }
    return {
      ok: true,
      treeSize: this.size,
      rootHash: this.currentRoot().toString('hex'),
      headsChecked: this.headsChecked,
    };
  }
}

export interface VerifyLogInput extends LogVerifierOptions {
  readonly entries: Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  /**
   * Checks the signature of each of `heads` (not `pinned`, which the caller already trusts);
   * anything but `true`, or a throw → STH_SIGNATURE_INVALID.
   */
  readonly checkTreeHead?: (head: TreeHead, position: number) => boolean | Promise<boolean>;
}

function signatureFailure(position: number, cause?: unknown): VerifyLogFailure {
  const why = cause instanceof Error ? ` (${cause.name})` : '';
  return fail({ problem: 'STH_SIGNATURE_INVALID', detail: `head #${position} failed its signature check${why}` });
}

/** Verifies a whole log (see the module comment). Resolves to the first problem or `{ ok: true }`; never throws for bad data. */
export async function verifyLog(input: VerifyLogInput): Promise<VerifyLogResult> {
  if (input.checkTreeHead) {
    for (const [k, head] of (input.heads ?? []).entries()) {
      let good = false;
      try {
        good = (await input.checkTreeHead(head, k)) === true;
      } catch (err) {
        return signatureFailure(k, err);
      }
      if (!good) return signatureFailure(k);
    }
  }
  const verifier = new LogVerifier(input);
  const entries = input.entries;
  if (Symbol.iterator in entries) {
    verifier.pushAll(entries);
  } else {
    for await (const e of entries) if (!verifier.push(e)) break;
  }
  return verifier.finish();
}

export interface VerifyLogSyncInput extends LogVerifierOptions {
  readonly entries: Iterable<Uint8Array>;
  readonly checkTreeHead?: (head: TreeHead, position: number) => boolean;
}

/** Synchronous verifyLog for in-memory entries and a synchronous head check. */
export function verifyLogSync(input: VerifyLogSyncInput): VerifyLogResult {
  if (input.checkTreeHead) {
    for (const [k, head] of (input.heads ?? []).entries()) {
      let good = false;
      try {
        good = input.checkTreeHead(head, k) === true;
      } catch (err) {
        return signatureFailure(k, err);
      }
      if (!good) return signatureFailure(k);
    }
  }
  const verifier = new LogVerifier(input);
  verifier.pushAll(input.entries);
  return verifier.finish();
}

/** Leaf hashes of canonical entries (what the appender stores as level-0 nodes). */
export function leafHashesOf(entries: Iterable<Uint8Array>): Buffer[] {
  const out: Buffer[] = [];
  for (const e of entries) out.push(leafHash(e));
  return out;
}
