/**
 * Verification of the stored audit log, inclusion proofs for outside parties, and retention pruning.
 *
 * verifyAuditLog: checks every stored tree head's JWS, then streams the entries from the store through the domain
 * LogVerifier (each entry hashed once, compared with its stored leaf hash so the first bad index is named), which
 * compares the recomputed root at every head's size — that is the consistency of each head with the next and with
 * the pinned (witnessed) head. After pruning, the pruned prefix is represented by its stored perfect-subtree nodes:
 * the verifier starts from them, and heads older than the prefix are checked with consistency proofs to it.
 *
 * Nothing here trusts the store: entries, leaf hashes, nodes and heads are all attacker-writable; only signatures
 * (keys from outside the store) and the pinned head carry trust.
 */
import type { JWK } from 'jose';
import {
  INCLUSION_PROOF_FORMAT,
  type InclusionProofBundle,
  ProofError,
  type TreeHead,
  TreeHeadSignatureError,
  decodeAuditEntry,
  leafHash,
  treeHeadRoot,
  verifyConsistency,
  verifyInclusion,
  verifyTreeHeadJws,
} from '@sealpost/audit-format';
import {
  type LeafHashSource,
  LogVerifier,
  type NodeReader,
  type LogProblem,
  TreeError,
  consistencyProofFromStore,
  frontierFromStore,
  frontierRoot,
  inclusionProofFromStore,
} from '../domain';
import type { AuditLogStore, StoredTreeHead } from '../ports/audit-log-store';

/** Problems verifyAuditLog reports: the domain's, plus two about the store's own summary records. */
export type AuditLogProblem =
  | LogProblem
  /** A head older than the prune point is not consistent with the stored nodes covering the pruned prefix. */
  | 'PRUNED_PREFIX_MISMATCH'
  /** The store's head record names another root than its entries produce (entries past the last signed head changed). */
  | 'HEAD_RECORD_MISMATCH';

/** Keys as a JWKS document or a plain list. */
export type PublicKeys = readonly JWK[] | { readonly keys: readonly JWK[] };

export interface VerifyProgress {
  /** Entries hashed so far (pruned ones excluded). */
  readonly verified: number;
  /** Entries to hash in total. */
  readonly total: number;
  readonly elapsedMs: number;
}

export interface VerifyAuditLogOptions {
  readonly store: AuditLogStore;
  readonly publicKeys: PublicKeys;
  /** A head kept outside the database (the witness); the log must still contain it. Its signature is checked too. */
  readonly trustedSth?: StoredTreeHead;
  /** Expected log id (default: the first head's). */
  readonly logId?: string;
  /** Called after each page of entries. */
  readonly onProgress?: (progress: VerifyProgress) => void;
  /** Entries per store read (default 10 000). */
  readonly pageSize?: number;
}

interface ReportBase {
  /** Number of committed entries per the store's head record. */
  readonly logSize: number;
  /** Entries below this index were pruned (verified through their stored tree nodes only). */
  readonly prunedBefore: number;
  /** Stored heads whose signatures were checked. */
  readonly headsSigned: number;
  /** Size of the pinned head, when one was given. */
  readonly pinnedSize?: number;
  /** Entries from this index on are not covered by any signed head yet (only by the stored leaf hashes). */
  readonly unsignedFrom?: number;
  readonly elapsedMs: number;
}

export interface AuditVerifySuccess extends ReportBase {
  readonly ok: true;
  readonly treeSize: number;
  readonly rootHash: string;
  /** Heads whose roots were recomputed from entries (or checked against the pruned prefix) and matched. */
  readonly headsChecked: number;
}

export interface AuditVerifyFailure extends ReportBase {
  readonly ok: false;
  readonly problem: AuditLogProblem;
  /** The first bad entry (or the start of the range it lies in, see rangeEnd). */
  readonly index?: number;
  readonly rangeEnd?: number;
  /** Size of the head involved. */
  readonly treeSize?: number;
  /** One line for people: sizes, indices and head positions only (never entry contents). */
  readonly detail: string;
}

export type AuditVerifyResult = AuditVerifySuccess | AuditVerifyFailure;

export type AuditVerifyErrorCode =
  | 'ENTRY_NOT_FOUND'
  | 'NOT_YET_SIGNED'
  | 'NO_TREE_HEAD'
  | 'PROOF_INVALID'
  | 'STH_SIGNATURE_INVALID'
  | 'LOG_NOT_VERIFIED'
  | 'INVALID_ARGUMENT';

/** proveEntry / pruneAuditLog refused; messages carry ids, sizes and indices only. */
export class AuditVerifyError extends Error {
  override readonly name = 'AuditVerifyError';
  constructor(
    readonly code: AuditVerifyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function keyList(keys: PublicKeys): readonly JWK[] {
  return Array.isArray(keys) ? keys : (keys as { keys: readonly JWK[] }).keys;
}

/** Stored leaf hashes in one flat buffer (32 bytes each), indices [offset, offset + count). */
class FlatLeafHashes implements LeafHashSource {
  private readonly buf: Buffer;
  private readonly present: Uint8Array;
  private filled = 0;
  length: number;

  constructor(
    private readonly offset: number,
    count: number,
  ) {
    this.buf = Buffer.allocUnsafe(count * 32);
    this.present = new Uint8Array(count);
    this.length = offset;
  }

  add(hashes: readonly (Buffer | undefined)[]): void {
    for (const h of hashes) {
      const k = this.filled++;
      if (h !== undefined && h.length === 32) {
        h.copy(this.buf, k * 32);
        this.present[k] = 1;
        this.length = this.offset + k + 1;
      }
    }
  }

  at(index: number): Uint8Array | undefined {
    const k = index - this.offset;
    if (k < 0 || k >= this.filled || this.present[k] !== 1) return undefined;
    return this.buf.subarray(k * 32, k * 32 + 32);
  }
}

/** Recomputes and checks the whole stored log (see the module comment). Never throws for bad data. */
export async function verifyAuditLog(options: VerifyAuditLogOptions): Promise<AuditVerifyResult> {
  const started = Date.now();
  const { store } = options;
  const keys = keyList(options.publicKeys);
  const pageSize = options.pageSize ?? 10_000;
  const head = await store.readHead();
  const prunedBefore = Math.min(await store.prunedBefore(), head.size);
  const stored = await store.listTreeHeads();
  const base = (): ReportBase => ({
    logSize: head.size,
    prunedBefore,
    headsSigned: stored.length,
    ...(options.trustedSth ? { pinnedSize: options.trustedSth.treeSize } : {}),
    elapsedMs: Date.now() - started,
  });
  const failure = (f: Omit<AuditVerifyFailure, 'ok' | keyof ReportBase>): AuditVerifyFailure => ({
    ok: false,
    ...f,
    ...base(),
  });

  // 1. Signatures: a head is evidence only if its key signed exactly its fields.
  const heads: TreeHead[] = [];
  const checkSig = async (h: StoredTreeHead, label: string): Promise<AuditVerifyFailure | TreeHead> => {
    try {
      return await verifyTreeHeadJws(h, keys);
    } catch (err) {
      if (!(err instanceof TreeHeadSignatureError)) throw err;
      return failure({
        problem: 'STH_SIGNATURE_INVALID',
        treeSize: h.treeSize,
        detail: `${label} (size ${h.treeSize}, kid ${h.kid}): ${err.code}`,
      });
    }
  };
  for (const [k, h] of stored.entries()) {
    const r = await checkSig(h, `stored head #${k}`);
    if ('ok' in r) return r;
    heads.push(r);
  }
  let pinned: TreeHead | undefined;
  if (options.trustedSth) {
    const r = await checkSig(options.trustedSth, 'trusted head');
    if ('ok' in r) return r;
    pinned = r;
  }

  // 2. The pruned prefix: its stored frontier, and every older head must be consistent with it.
  let start: { size: number; nodes: Buffer[] } | undefined;
  let prefixChecked = 0;
  if (prunedBefore > 0) {
    let prefixRoot: Buffer;
    try {
      const frontier = await frontierFromStore(store, prunedBefore);
      start = { size: prunedBefore, nodes: frontier.nodes.map((n) => n.hash) };
      prefixRoot = frontierRoot(frontier);
    } catch (err) {
      if (!(err instanceof TreeError)) throw err;
      return failure({
        problem: 'PRUNED_PREFIX_MISMATCH',
        index: 0,
        rangeEnd: prunedBefore,
        detail: `the stored nodes covering the pruned prefix [0, ${prunedBefore}) are incomplete (${err.code})`,
      });
    }
    const older = [...(pinned ? [{ h: pinned, label: 'trusted head' }] : [])];
    heads.forEach((h, k) => older.push({ h, label: `stored head #${k}` }));
    for (const { h, label } of older) {
      if (h.treeSize >= prunedBefore) continue;
      try {
        const proof = await consistencyProofFromStore(store, h.treeSize, prunedBefore, head.size);
        verifyConsistency(h.treeSize, prunedBefore, treeHeadRoot(h), prefixRoot, proof);
        prefixChecked += 1;
      } catch (err) {
        if (!(err instanceof ProofError || err instanceof TreeError)) throw err;
        return failure({
          problem: 'PRUNED_PREFIX_MISMATCH',
          index: 0,
          rangeEnd: prunedBefore,
          treeSize: h.treeSize,
          detail: `${label} (size ${h.treeSize}) is not consistent with the stored nodes of the pruned prefix [0, ${prunedBefore})`,
        });
      }
    }
  }

  const newest = Math.max(0, ...heads.map((h) => h.treeSize), pinned?.treeSize ?? 0);
  const success = (r: { treeSize: number; rootHash: string; headsChecked: number }): AuditVerifySuccess => ({
    ok: true,
    treeSize: r.treeSize,
    rootHash: r.rootHash,
    headsChecked: r.headsChecked + prefixChecked,
    ...base(),
    ...(newest < head.size ? { unsignedFrom: newest } : {}),
  });
  const total = head.size - prunedBefore;
  const verifierOptions = {
    heads,
    ...(pinned ? { pinned } : {}),
    ...(options.logId !== undefined ? { logId: options.logId } : {}),
    ...(start ? { start } : {}),
  };

  // 3a. Fast path (stores with readVerifyPage): entries and stored leaf hashes in concatenated pages, compared as
  // they stream. It can only accept: anything irregular (a gap, a missing or differing stored hash, any problem)
  // falls through to 3b/4, which re-reads and names the problem exactly as before.
  if (store.readVerifyPage) {
    const fast = new LogVerifier(verifierOptions);
    let verified = 0;
    let regular = true;
    const fastPage = options.pageSize ?? 8192;
    for (let at = prunedBefore; at < head.size && regular; at += fastPage) {
      const want = Math.min(head.size, at + fastPage) - at;
      const page = await store.readVerifyPage(at, at + want);
      if (page.count !== want || !page.contiguous || page.leafHashCount !== want) {
        regular = false;
        break;
      }
      const { bytes, lengths, leafHashes } = page;
      let offset = 0;
      for (let k = 0; k < want; k++) {
        const end = offset + lengths[k]!;
        if (!fast.pushChecked(bytes, offset, end, leafHashes, k * 32)) {
          regular = false;
          break;
        }
        offset = end;
      }
      verified += want;
      options.onProgress?.({ verified, total, elapsedMs: Date.now() - started });
    }
    const result = regular ? fast.finish() : undefined;
    if (result?.ok && result.treeSize === head.size && result.rootHash === head.root.toString('hex')) {
      return success(result);
    }
  }

  // 3b. Stored leaf hashes, read in ranges, so a bad entry is named exactly.
  const leafHashes = new FlatLeafHashes(prunedBefore, total);
  for (let at = prunedBefore; at < head.size; at += 65_536) {
    leafHashes.add(await store.getLeafHashes(at, Math.min(head.size, at + 65_536)));
  }

  // 4. Stream the entries through the verifier.
  const verifier = new LogVerifier({ ...verifierOptions, storedLeafHashes: leafHashes });
  let verified = 0;
  let going = true;
  for (let at = prunedBefore; at < head.size && going; at += pageSize) {
    const rows = await store.getEntries(at, at + pageSize);
    for (const row of rows) {
      verified += 1;
      if (!verifier.push(row.canonical)) {
        going = false;
        break;
      }
    }
    options.onProgress?.({ verified, total, elapsedMs: Date.now() - started });
  }
  const result = verifier.finish();
  if (!result.ok) {
    const { ok: _ok, ...rest } = result;
    return failure(rest);
  }
  // 5. The head record must agree too: it is the only commitment to entries no head has signed yet.
  if (result.treeSize === head.size && result.rootHash !== head.root.toString('hex')) {
    return failure({
      problem: 'HEAD_RECORD_MISMATCH',
      treeSize: head.size,
      detail: `the store's head record (size ${head.size}) names another root than its entries produce`,
    });
  }
  return success(result);
}

export interface ProveEntryOptions {
  readonly store: AuditLogStore;
  readonly entryId: string;
  /** Prove against the newest head of this size (default: the newest head). */
  readonly treeSize?: number;
  /** When given, the head's signature is checked before the proof is handed out. */
  readonly publicKeys?: PublicKeys;
  /** Where proof nodes are read (default the store; a CachedNodeReader over it when serving many proofs). */
  readonly nodes?: NodeReader;
}

/**
 * Builds the inclusion proof of an entry against a signed tree head, and checks it before returning (fail closed).
 * Throws AuditVerifyError ENTRY_NOT_FOUND, NO_TREE_HEAD, NOT_YET_SIGNED, PROOF_INVALID, STH_SIGNATURE_INVALID.
 */
export async function proveEntry(options: ProveEntryOptions): Promise<InclusionProofBundle> {
  const { store, entryId } = options;
  const leaf = await store.findByEntryId(entryId);
  if (!leaf) throw new AuditVerifyError('ENTRY_NOT_FOUND', 'no such entry in the log (it may have been pruned)');
  const sth =
    options.treeSize !== undefined ? await store.treeHeadOfSize(options.treeSize) : await store.latestTreeHead();
  if (!sth) {
    throw new AuditVerifyError(
      'NO_TREE_HEAD',
      options.treeSize !== undefined ? `no signed head of size ${options.treeSize}` : 'the log has no signed head yet',
    );
  }
  if (sth.treeSize <= leaf.index) {
    throw new AuditVerifyError(
      'NOT_YET_SIGNED',
      `entry ${leaf.index} is not covered by the head of size ${sth.treeSize}; retry after the next signed head`,
    );
  }
  if (options.publicKeys) {
    try {
      await verifyTreeHeadJws(sth, keyList(options.publicKeys));
    } catch (cause) {
      throw new AuditVerifyError('STH_SIGNATURE_INVALID', `head of size ${sth.treeSize} fails its signature check`, {
        cause,
      });
    }
  }
  const head = await store.readHead();
  const hash = leafHash(leaf.canonical);
  let proof: Buffer[];
  try {
    proof = await inclusionProofFromStore(options.nodes ?? store, leaf.index, sth.treeSize, head.size);
    verifyInclusion(hash, leaf.index, sth.treeSize, proof, Buffer.from(sth.rootHash, 'hex'));
  } catch (cause) {
    if (!(cause instanceof ProofError || cause instanceof TreeError)) throw cause;
    throw new AuditVerifyError(
      'PROOF_INVALID',
      `the stored tree does not prove entry ${leaf.index} in the head of size ${sth.treeSize}: run audit verify`,
      { cause },
    );
  }
  return {
    format: INCLUSION_PROOF_FORMAT,
    entryId: leaf.entryId,
    leafIndex: leaf.index,
    entry: leaf.canonical.toString('base64'),
    leafHash: hash.toString('hex'),
    treeSize: sth.treeSize,
    proof: proof.map((p) => p.toString('hex')),
    sth: {
      logId: sth.logId,
      treeSize: sth.treeSize,
      rootHash: sth.rootHash,
      timestamp: sth.timestamp,
      kid: sth.kid,
      jws: sth.jws,
    },
  };
}

export interface PruneAuditLogOptions {
  readonly store: AuditLogStore;
  /** Prune the prefix of entries that occurred before this time (ms since the epoch). */
  readonly before: number;
  /** Keys for the verification run before pruning (pruning must not destroy evidence of earlier tampering). */
  readonly publicKeys: PublicKeys;
  readonly trustedSth?: StoredTreeHead;
  /** Report what would be pruned; change nothing. */
  readonly dryRun?: boolean;
  readonly onProgress?: (progress: VerifyProgress) => void;
}

export interface PruneAuditLogResult {
  /** Prune point before this call. */
  readonly previous: number;
  /** Prune point after it (or that a real run would set, for a dry run). */
  readonly prunedBefore: number;
  /** Entries whose bytes were (or would be) removed by this call. */
  readonly entriesPruned: number;
  /** What stopped the prefix: an entry at or after `before`, the newest signed head, or the end of the log. */
  readonly stoppedBy: 'time' | 'signed-head' | 'end';
  readonly dryRun: boolean;
}

/**
 * Retention: removes the bytes and query columns of the longest prefix of entries that all occurred before
 * `before`, never past the newest signed head (pruned entries must stay committed to by a signature). Tree nodes
 * and heads stay, so the remainder, its proofs and consistency with witnessed heads still verify. Verifies the
 * whole log first and refuses (LOG_NOT_VERIFIED) if it does not: pruning would erase the evidence.
 */
export async function pruneAuditLog(options: PruneAuditLogOptions): Promise<PruneAuditLogResult> {
  const { store, before } = options;
  if (!Number.isSafeInteger(before) || before < 0) {
    throw new AuditVerifyError('INVALID_ARGUMENT', '`before` must be a time in milliseconds since the epoch');
  }
  const check = await verifyAuditLog({
    store,
    publicKeys: options.publicKeys,
    ...(options.trustedSth ? { trustedSth: options.trustedSth } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  if (!check.ok) {
    throw new AuditVerifyError('LOG_NOT_VERIFIED', `the log does not verify (${check.problem}); nothing pruned`);
  }
  const previous = check.prunedBefore;
  const signedSize = (await store.latestTreeHead())?.treeSize ?? 0;
  const limit = Math.min(signedSize, check.logSize);
  let point = previous;
  let stoppedBy: PruneAuditLogResult['stoppedBy'] = limit < check.logSize ? 'signed-head' : 'end';
  scan: for (let at = previous; at < limit; at += 10_000) {
    for (const row of await store.getEntries(at, Math.min(limit, at + 10_000))) {
      if (row.index !== point || decodeAuditEntry(row.canonical).occurredAt >= before) {
        stoppedBy = 'time';
        break scan;
      }
      point += 1;
    }
  }
  if (!options.dryRun && point > previous) await store.pruneEntries(point);
  return {
    previous,
    prunedBefore: point,
    entriesPruned: point - previous,
    stoppedBy,
    dryRun: options.dryRun === true,
  };
}
