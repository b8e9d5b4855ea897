/**
 * Audit verification speed against its same-run baseline: computing the RFC 6962 root of the same leaves in memory
 * (hash every entry, then reduce the leaf hashes level by level). Scope: pure CPU, entries already in memory as
 * canonical bytes; no store involved.
 *
 *   pnpm exec tsx services/audit/bench/verify-speed.ts [entries=1000000] [rounds=3]
 *
 * Prints entries/second for each and the ratio (goal ≥ 0.8, tracked here, not asserted in tests).
 */
import {
  type AuditEntry,
  type TreeHead,
  encodeAuditEntry,
  leafHash,
  merkleRoot,
  nodeHash,
} from '@sealpost/audit-format';
import { appendLeaves, emptyFrontier, frontierRoot, verifyLogSync } from '../src/domain';

const count = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);

function makeEntries(n: number): Buffer[] {
  const out: Buffer[] = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) {
    const e: AuditEntry = {
      entryId: `01J9Z6V4QX8R2M3N4P${i.toString(36).padStart(8, '0')}`,
      sourceService: 'contact-vault',
      tenantId: `tenant-${i % 17}`,
      action: 'contact.reveal',
      actorKind: 'operator',
      actorId: `op:${(i % 97).toString(16)}`,
      resourceIds: [`ct_${i}`, `ct_${i + 1}`],
      purposeCode: 'support.case',
      ticketRef: i % 3 === 0 ? `SEC-${i % 10000}` : '',
      outcome: 'granted',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      occurredAt: 1_767_225_600_000 + i,
    };
    out[i] = encodeAuditEntry(e);
  }
  return out;
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

const entries = makeEntries(count);
const bytes = entries.reduce((n, e) => n + e.length, 0);

// Heads every count/10 entries plus the full size, computed once outside the timed runs.
const headSizes = Array.from({ length: 10 }, (_, k) => Math.round(((k + 1) * count) / 10));
const heads: TreeHead[] = [];
{
  let f = emptyFrontier();
  let at = 0;
  for (const size of headSizes) {
    f = appendLeaves(
      f,
      entries.slice(at, size).map((e) => leafHash(e)),
    ).newFrontier;
    at = size;
    heads.push({ logId: 'bench', treeSize: size, rootHash: frontierRoot(f).toString('hex'), timestamp: size });
  }
}
const stored = entries.map((e) => leafHash(e));

/** The tightest in-memory root: hash each entry once, fold into a stack of perfect-subtree hashes. */
function streamingRoot(list: readonly Buffer[]): Buffer {
  const stack: Buffer[] = [];
  for (let i = 0; i < list.length; i++) {
    stack.push(leafHash(list[i]!));
    for (let n = i; n % 2 === 1; n = (n - 1) / 2) {
      const right = stack.pop()!;
      stack.push(nodeHash(stack.pop()!, right));
    }
  }
  let root = stack.pop()!;
  while (stack.length > 0) root = nodeHash(stack.pop()!, root);
  return root;
}

const best = { baseline: Infinity, streaming: Infinity, verify: Infinity, verifyStored: Infinity };
let baselineRoot = '';
for (let r = 0; r < rounds; r++) {
  const base = time(() => merkleRoot(entries.map((e) => leafHash(e))));
  baselineRoot = base.value.toString('hex');
  best.baseline = Math.min(best.baseline, base.ms);

  const stream = time(() => streamingRoot(entries));
  if (stream.value.toString('hex') !== baselineRoot) throw new Error('streaming root differs from merkleRoot');
  best.streaming = Math.min(best.streaming, stream.ms);

  const v = time(() => verifyLogSync({ entries, heads, pinned: heads[4] }));
  if (!v.value.ok || v.value.rootHash !== baselineRoot)
    throw new Error(`verification failed: ${JSON.stringify(v.value)}`);
  best.verify = Math.min(best.verify, v.ms);

  const vs = time(() => verifyLogSync({ entries, heads, pinned: heads[4], storedLeafHashes: stored }));
  if (!vs.value.ok) throw new Error(`verification failed: ${JSON.stringify(vs.value)}`);
  best.verifyStored = Math.min(best.verifyStored, vs.ms);
}

const rate = (ms: number): string => `${Math.round(count / (ms / 1000)).toLocaleString('en-US')} entries/s`;
const line = (label: string, ms: number): string =>
  `${label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  ${rate(ms).padStart(18)}` +
  `  vs array ${(best.baseline / ms).toFixed(2)}  vs streaming ${(best.streaming / ms).toFixed(2)}`;
console.log(
  `entries: ${count.toLocaleString('en-US')} (${(bytes / count).toFixed(0)} B avg), best of ${rounds}, node ${process.version}`,
);
console.log(line('baseline: merkleRoot(leaf hashes array)', best.baseline));
console.log(line('baseline: streaming-stack root', best.streaming));
console.log(line('verifyLog, 11 heads incl. pinned', best.verify));
console.log(line('verifyLog + stored leaf hashes', best.verifyStored));
