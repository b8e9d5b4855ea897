import { type AuditEntry, type TreeHead, encodeAuditEntry, leafHash, merkleTreeHash } from '@sealpost/audit-format';
import { LogVerifier, type VerifyLogResult, leafHashesOf, verifyLog, verifyLogSync } from './verify-log';

const LOG = 'sealpost/audit/test';

function entryBytes(i: number, variant = 'a'): Buffer {
  const e: AuditEntry = {
    entryId: `e-${variant}-${i}`,
    sourceService: 'contact-vault',
    tenantId: 'tenant-1',
    action: 'contact.reveal',
    actorKind: 'operator',
    actorId: `op-${i % 7}`,
    resourceIds: [`ct_${i}`],
    purposeCode: 'support.case',
    ticketRef: '',
    outcome: 'granted',
    traceId: '',
    occurredAt: 1_767_225_600_000 + i,
  };
  return encodeAuditEntry(e);
}

const N = 100;
const HEAD_SIZES = [10, 25, 50, 64, 100];
const entries = Array.from({ length: N }, (_, i) => entryBytes(i));
const stored = leafHashesOf(entries);

function headAt(size: number, from: readonly Buffer[] = entries, logId = LOG): TreeHead {
  return {
    logId,
    treeSize: size,
    rootHash: merkleTreeHash(leafHashesOf(from.slice(0, size))).toString('hex'),
    timestamp: 1_767_230_000_000 + size * 1000,
  };
}
const heads = HEAD_SIZES.map((s) => headAt(s));

function expectProblem(result: VerifyLogResult, expected: Record<string, unknown>): void {
  expect(result.ok).toBe(false);
  expect(result).toMatchObject(expected);
  if (!result.ok) expect(result.detail.length).toBeGreaterThan(0);
}

const without = <T>(xs: readonly T[], i: number): T[] => [...xs.slice(0, i), ...xs.slice(i + 1)];
const swap = <T>(xs: readonly T[], i: number, j: number): T[] => {
  const out = xs.slice();
  [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
};

describe('verifyLog on an intact log', () => {
  it('recomputes the root and checks every head and the pin', () => {
    const result = verifyLogSync({ entries, heads, pinned: heads[2], storedLeafHashes: stored });
    expect(result).toEqual({
      ok: true,
      treeSize: N,
      rootHash: merkleTreeHash(stored).toString('hex'),
      headsChecked: HEAD_SIZES.length + 1,
    });
  });

  it('accepts heads in any order, duplicates, a size-0 head, and no heads at all', () => {
    const empty = headAt(0);
    expect(verifyLogSync({ entries, heads: [...heads].reverse().concat(heads[1]!, empty) }).ok).toBe(true);
    expect(verifyLogSync({ entries }).ok).toBe(true);
    expect(verifyLogSync({ entries: [], heads: [empty] })).toMatchObject({ ok: true, treeSize: 0, headsChecked: 1 });
  });

  it('accepts a log that grew past its last head', () => {
    expect(verifyLogSync({ entries, heads: heads.slice(0, 3), storedLeafHashes: stored }).ok).toBe(true);
  });
});

describe('verifyLog with stored leaf hashes names the first bad entry', () => {
  const run = (tampered: Buffer[]): VerifyLogResult =>
    verifyLogSync({ entries: tampered, heads, pinned: heads[1], storedLeafHashes: stored });

  it('edit: "entry 41 modified"', () => {
    const edited = entries.slice();
    edited[41] = entryBytes(41, 'forged');
    expectProblem(run(edited), { problem: 'ENTRY_MODIFIED', index: 41 });
  });

  it('delete', () => {
    expectProblem(run(without(entries, 41)), { problem: 'ENTRY_DELETED', index: 41 });
    expectProblem(run(without(entries, 0)), { problem: 'ENTRY_DELETED', index: 0 });
  });

  it('insert', () => {
    const inserted = [...entries.slice(0, 41), entryBytes(999, 'forged'), ...entries.slice(41)];
    expectProblem(run(inserted), { problem: 'ENTRY_INSERTED', index: 41 });
    // Inserting a copy of an existing entry is still an insertion.
    const dup = [...entries.slice(0, 41), entries[70]!, ...entries.slice(41)];
    expectProblem(run(dup), { problem: 'ENTRY_INSERTED', index: 41 });
  });

  it('reorder: a swap of neighbours, a distant swap, and a move', () => {
    expectProblem(run(swap(entries, 41, 42)), { problem: 'ENTRY_REORDERED', index: 41 });
    expectProblem(run(swap(entries, 41, 77)), { problem: 'ENTRY_REORDERED', index: 41 });
    const moved = [...entries.slice(0, 41), entries[57]!, ...without(entries, 57).slice(41)];
    expectProblem(run(moved), { problem: 'ENTRY_REORDERED', index: 41 });
  });

  it('a stored leaf hash altered while the entry still matches the heads', () => {
    const altered = stored.slice();
    altered[41] = leafHash(Buffer.from('x'));
    expectProblem(verifyLogSync({ entries, heads, storedLeafHashes: altered }), {
      problem: 'STORED_HASH_MISMATCH',
      index: 41,
      treeSize: 50,
    });
  });

  it('changes after the last head, which only the stored hashes reveal', () => {
    const witnessed = heads.slice(0, 3); // up to size 50
    const edited = entries.slice();
    edited[80] = entryBytes(80, 'forged');
    expectProblem(verifyLogSync({ entries: edited, heads: witnessed, storedLeafHashes: stored }), {
      problem: 'ENTRY_MODIFIED',
      index: 80,
    });
    expectProblem(verifyLogSync({ entries: entries.slice(0, 90), heads: witnessed, storedLeafHashes: stored }), {
      problem: 'ENTRY_DELETED',
      index: 90,
    });
    const appended = [...entries, entryBytes(100, 'forged')];
    expectProblem(verifyLogSync({ entries: appended, heads: witnessed, storedLeafHashes: stored }), {
      problem: 'ENTRY_INSERTED',
      index: 100,
    });
  });
});

describe('verifyLog with heads only bounds the first bad entry between heads', () => {
  it.each([
    [
      'edit',
      (() => {
        const edited = entries.slice();
        edited[41] = entryBytes(41, 'forged');
        return edited;
      })(),
    ],
    ['delete', without(entries, 41)],
    ['insert', [...entries.slice(0, 41), entryBytes(999, 'forged'), ...entries.slice(41)]],
    ['reorder', swap(entries, 41, 42)],
  ])('%s of entry 41 → first bad entry in [25, 50)', (_, tampered) => {
    expectProblem(verifyLogSync({ entries: tampered, heads }), {
      problem: 'STH_ROOT_MISMATCH',
      index: 25,
      rangeEnd: 50,
      treeSize: 50,
    });
  });

  it('an edit that also rewrote the stored leaf hash is still caught by the heads', () => {
    const edited = entries.slice();
    edited[41] = entryBytes(41, 'forged');
    expectProblem(verifyLogSync({ entries: edited, heads, storedLeafHashes: leafHashesOf(edited) }), {
      problem: 'STH_ROOT_MISMATCH',
      index: 25,
      rangeEnd: 50,
    });
  });

  it('a pinned head alone catches an edit below it', () => {
    const edited = entries.slice();
    edited[3] = entryBytes(3, 'forged');
    expectProblem(verifyLogSync({ entries: edited, pinned: heads[0] }), {
      problem: 'STH_ROOT_MISMATCH',
      index: 0,
      rangeEnd: 10,
    });
  });
});

describe('verifyLog on heads', () => {
  it('a replaced head that later heads contradict is a fork', () => {
    const other = Array.from({ length: N }, (_, i) => entryBytes(i, 'b'));
    const replaced = heads.slice();
    replaced[2] = headAt(50, other);
    const result = verifyLogSync({ entries, heads: replaced, storedLeafHashes: stored });
    expectProblem(result, { problem: 'FORK', treeSize: 50 });
    if (!result.ok) expect(result.detail).toMatch(/head #2 \(size 50\).*head #3 \(size 64\)/);
  });

  it('a replaced last head is caught as a root mismatch after the previous head', () => {
    const other = Array.from({ length: N }, (_, i) => entryBytes(i, 'b'));
    const replaced = [...heads.slice(0, 4), headAt(100, other)];
    expectProblem(verifyLogSync({ entries, heads: replaced }), {
      problem: 'STH_ROOT_MISMATCH',
      index: 64,
      rangeEnd: 100,
    });
  });

  it('two heads of the same size with different roots are a fork, whatever the entries', () => {
    const other = Array.from({ length: N }, (_, i) => entryBytes(i, 'b'));
    const result = verifyLogSync({ entries, heads: [...heads, headAt(64, other)] });
    expectProblem(result, { problem: 'FORK', treeSize: 64 });
  });

  it('a different log with its own consistent heads forks from the pinned head', () => {
    // Log B shares the first 30 entries with log A, then differs; its own heads all match it.
    const logB = [...entries.slice(0, 30), ...Array.from({ length: 80 }, (_, i) => entryBytes(30 + i, 'b'))];
    const headsB = [40, 60, 110].map((s) => headAt(s, logB));
    expect(verifyLogSync({ entries: logB, heads: headsB }).ok).toBe(true);
    const result = verifyLogSync({ entries: logB, heads: headsB, pinned: headAt(50) });
    expectProblem(result, { problem: 'FORK', treeSize: 50 });
    if (!result.ok) expect(result.detail).toContain('pinned head');
    // Against log A's own heads instead, B's entries fail at the first A head past the divergence.
    expectProblem(verifyLogSync({ entries: logB, heads }), { problem: 'STH_ROOT_MISMATCH', index: 25, rangeEnd: 50 });
  });

  it('truncation below a witnessed head is a rollback at the first missing entry', () => {
    expectProblem(verifyLogSync({ entries: entries.slice(0, 80), heads }), {
      problem: 'ROLLBACK',
      index: 80,
      treeSize: 100,
    });
    expectProblem(verifyLogSync({ entries: entries.slice(0, 80), heads, storedLeafHashes: stored.slice(0, 80) }), {
      problem: 'ROLLBACK',
      index: 80,
      treeSize: 100,
    });
    // Heads in the store were truncated too, but the pinned head remembers.
    expectProblem(verifyLogSync({ entries: entries.slice(0, 60), heads: heads.slice(0, 3), pinned: heads[3] }), {
      problem: 'ROLLBACK',
      index: 60,
      treeSize: 64,
    });
    expectProblem(verifyLogSync({ entries: [], pinned: heads[0] }), { problem: 'ROLLBACK', index: 0, treeSize: 10 });
  });

  it('a smaller tree signed after a larger one is a rollback', () => {
    const late = { ...heads[1]!, timestamp: heads[4]!.timestamp + 1 };
    expectProblem(verifyLogSync({ entries, heads: [heads[0]!, late, ...heads.slice(2)] }), {
      problem: 'ROLLBACK',
      treeSize: 25,
    });
  });

  it('refuses malformed heads and heads of another log', () => {
    expectProblem(verifyLogSync({ entries, heads: [...heads, { ...heads[0]!, rootHash: 'abc' }] }), {
      problem: 'STH_INVALID',
    });
    expectProblem(verifyLogSync({ entries, heads: [...heads, headAt(10, entries, 'other-log')] }), {
      problem: 'STH_INVALID',
    });
    expectProblem(verifyLogSync({ entries, heads, logId: 'other-log' }), { problem: 'STH_INVALID' });
  });

  it('runs the signature check on every head and fails closed', async () => {
    const seen: number[] = [];
    const ok = await verifyLog({ entries, heads, checkTreeHead: (_, k) => (seen.push(k), Promise.resolve(true)) });
    expect(ok.ok).toBe(true);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expectProblem(await verifyLog({ entries, heads, checkTreeHead: (_, k) => k !== 3 }), {
      problem: 'STH_SIGNATURE_INVALID',
    });
    const throwing = verifyLogSync({
      entries,
      heads,
      checkTreeHead: () => {
        throw new Error('bad signature');
      },
    });
    expectProblem(throwing, { problem: 'STH_SIGNATURE_INVALID' });
    expectProblem(await verifyLog({ entries, heads, checkTreeHead: () => 'yes' as unknown as boolean }), {
      problem: 'STH_SIGNATURE_INVALID',
    });
  });
});

describe('streaming', () => {
  it('reads entries from an async source', async () => {
    async function* source(): AsyncGenerator<Uint8Array> {
      for (const e of entries) yield e;
    }
    expect(await verifyLog({ entries: source(), heads, storedLeafHashes: stored })).toMatchObject({
      ok: true,
      treeSize: N,
    });
    async function* edited(): AsyncGenerator<Uint8Array> {
      for (const [i, e] of entries.entries()) yield i === 41 ? entryBytes(41, 'forged') : e;
    }
    expectProblem(await verifyLog({ entries: edited(), heads, storedLeafHashes: stored }), {
      problem: 'ENTRY_MODIFIED',
      index: 41,
    });
  });

  it('stops asking for entries once the outcome is settled', () => {
    const v = new LogVerifier({
      heads: [
        ...heads,
        headAt(
          64,
          Array.from({ length: 64 }, (_, i) => entryBytes(i, 'b')),
        ),
      ],
    });
    expect(v.push(entries[0]!)).toBe(false);
    expect(v.finish()).toMatchObject({ ok: false, problem: 'FORK' });
  });

  it('refuses a non-byte entry', () => {
    expectProblem(verifyLogSync({ entries: [entries[0]!, 'x' as unknown as Uint8Array] }), {
      problem: 'ENTRY_INVALID',
      index: 1,
    });
  });
});

describe('LogVerifier.pushChecked (entries and stored hashes as concatenated pages)', () => {
  const page = Buffer.concat(entries);
  const hashes = Buffer.concat(stored);
  const offsets = entries.reduce<number[]>((acc, e) => [...acc, acc[acc.length - 1]! + e.length], [0]);

  it('gives the same verdict as push for an intact log', () => {
    const v = new LogVerifier({ heads });
    for (let i = 0; i < N; i++) expect(v.pushChecked(page, offsets[i]!, offsets[i + 1]!, hashes, i * 32)).toBe(true);
    expect(v.storedMismatch).toBeUndefined();
    expect(v.finish()).toEqual(verifyLogSync({ entries, heads, storedLeafHashes: stored }));
  });

  it('stops at the first entry that differs from its stored hash, deciding nothing', () => {
    const altered = Buffer.from(hashes);
    altered[37 * 32 + 5]! ^= 1;
    const v = new LogVerifier({ heads });
    let i = 0;
    while (i < N && v.pushChecked(page, offsets[i]!, offsets[i + 1]!, altered, i * 32)) i++;
    expect(i).toBe(37);
    expect(v.storedMismatch).toBe(37);
    expect(v.pushChecked(page, offsets[38]!, offsets[39]!, altered, 38 * 32)).toBe(false);
  });
});
