import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JWK } from 'jose';
import { Binary } from 'mongodb';
import { connectMongo } from '@sealpost/storage';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { encodeAuditEntry, encodeTreeHeadPayload, leafHash, verifyInclusion } from '@sealpost/audit-format';
import { flatIndex, frontierFromStore, frontierRoot } from '../src/domain';
import { LocalEd25519Signer } from '../src/adapters/signing/local-ed25519-signer';
import { MongoAuditLogStore } from '../src/adapters/mongo/mongo-audit-log-store';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { FileWitness } from '../src/adapters/witness/file-witness';
import { FencedLogWriter } from '../src/app/append-entries';
import { signTreeHead } from '../src/app/sign-tree-head';
import { type AuditVerifyResult, proveEntry, pruneAuditLog, verifyAuditLog } from '../src/app/verify';
import type { AuditLogStore, StoredTreeHead } from '../src/ports/audit-log-store';
import { sampleEntry } from './fixtures';

const LOG_ID = 'sealpost-audit-test';
const T0 = 1_750_000_000_000;

interface Built {
  dir: string;
  store: SqliteAuditLogStore;
  signer: LocalEd25519Signer;
  witness: FileWitness;
  keys: JWK[];
  heads: StoredTreeHead[];
}

let clock = T0;

/** A real log: 40 entries through the appender's writer, a signed head after every 10 (sizes 10…40), witnessed. */
async function buildLog(dir: string, keyFile = path.join(dir, 'key.pem'), count = 40): Promise<Built> {
  fs.mkdirSync(dir, { recursive: true });
  const store = SqliteAuditLogStore.open(path.join(dir, 'audit.sqlite'));
  const signer = await LocalEd25519Signer.fromFile(keyFile);
  const witness = new FileWitness(path.join(dir, 'witness.jsonl'));
  const writer = new FencedLogWriter(store, 1);
  await writer.open();
  const heads: StoredTreeHead[] = [];
  for (let at = 0; at < count; at += 10) {
    await writer.append(
      Array.from({ length: 10 }, (_, i) => sampleEntry({ occurredAt: T0 + (at + i) * 1000, actorId: `op-${at + i}` })),
    );
    heads.push(await signTreeHead({ store, signer, witness, logId: LOG_ID, now: () => (clock += 1000) }));
  }
  writer.close();
  return { dir, store, signer, witness, keys: [await signer.publicJwk()], heads };
}

function run(sql: string, ...params: unknown[]): (b: Built) => void {
  return (b) => void b.store.db.prepare(sql).run(...params);
}

function expectFailure(r: AuditVerifyResult, problem: string, index?: number): void {
  if (r.ok) throw new Error(`expected ${problem}, verification passed`);
  expect(r.problem).toBe(problem);
  if (index !== undefined) expect(r.index).toBe(index);
  // Reports never carry entry contents: only sizes, indices and head labels.
  expect(r.detail).not.toMatch(/op-\d|ct-1|SEC-12/);
}

describe('verifyAuditLog on a real SQLite log', () => {
  let root: string;
  let b: Built;
  let trusted: StoredTreeHead;

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sealpost-audit-verify-'));
    b = await buildLog(path.join(root, 'log'));
    trusted = (await b.witness.latest())!;
  });
  afterEach(async () => {
    await b.store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('reads verification pages that hold exactly the stored entries and leaf hashes, in index order', async () => {
    const page = await b.store.readVerifyPage(5, 17);
    const rows = await b.store.getEntries(5, 17);
    expect(page).toMatchObject({ count: 12, contiguous: true, leafHashCount: 12 });
    expect(page.bytes.equals(Buffer.concat(rows.map((r) => r.canonical)))).toBe(true);
    expect(page.lengths).toEqual(rows.map((r) => r.canonical.length));
    const hashes = await b.store.getLeafHashes(5, 17);
    expect(page.leafHashes.equals(Buffer.concat(hashes.map((h) => h!)))).toBe(true);
    // Clamped to the head; a gap shows as a page that is not contiguous.
    expect((await b.store.readVerifyPage(35, 99)).count).toBe(5);
    run('DELETE FROM audit_leaves WHERE idx = 8')(b);
    expect(await b.store.readVerifyPage(5, 17)).toMatchObject({ count: 11, contiguous: false });
  });

  it('a stored leaf hash of the wrong length is not accepted by the paged path', async () => {
    run('UPDATE audit_nodes SET hash = ? WHERE id = ?', Buffer.alloc(31, 1), flatIndex(0, 22))(b);
    const r = await verifyAuditLog({ store: b.store, publicKeys: b.keys, trustedSth: trusted });
    expect(r.ok).toBe(false);
  });

  it('passes an untouched log, checking every head and the witnessed one, with progress reports', async () => {
    const progress: number[] = [];
    const r = await verifyAuditLog({
      store: b.store,
      publicKeys: { keys: b.keys },
      trustedSth: trusted,
      pageSize: 7,
      onProgress: (p) => progress.push(p.verified),
    });
    expect(r).toMatchObject({ ok: true, treeSize: 40, headsChecked: 5, headsSigned: 4, pinnedSize: 40 });
    expect(r.ok && r.rootHash).toBe(trusted.rootHash);
    expect(progress[progress.length - 1]).toBe(40);
    expect(progress.length).toBe(Math.ceil(40 / 7));
  });

  it('detects an edited entry and names its index', async () => {
    const [row] = await b.store.getEntries(13, 14);
    const edited = encodeAuditEntry({ ...sampleEntry(), entryId: row!.entryId, actorId: 'op-forged' });
    run('UPDATE audit_leaves SET canonical = ? WHERE idx = 13', edited)(b);
    expectFailure(
      await verifyAuditLog({ store: b.store, publicKeys: b.keys, trustedSth: trusted }),
      'ENTRY_MODIFIED',
      13,
    );
  });

  it('detects an edited entry whose stored leaf hash and leaf node were rewritten to match', async () => {
    const edited = encodeAuditEntry(sampleEntry());
    const h = leafHash(edited);
    run('UPDATE audit_leaves SET canonical = ?, leaf_hash = ? WHERE idx = 13', edited, h)(b);
    run('UPDATE audit_nodes SET hash = ? WHERE id = ?', h, flatIndex(0, 13))(b);
    const r = await verifyAuditLog({ store: b.store, publicKeys: b.keys, trustedSth: trusted });
    // The stored hashes agree with the entry, so only the signed head of size 20 shows it: the range [10, 20).
    expectFailure(r, 'STH_ROOT_MISMATCH', 10);
    expect(r.ok === false && [r.rangeEnd, r.treeSize]).toEqual([20, 20]);
  });

  it('detects a deleted entry (gap left, or later entries renumbered down)', async () => {
    run('DELETE FROM audit_leaves WHERE idx = 13')(b);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'ENTRY_DELETED', 13);
    for (let i = 14; i < 40; i++) run('UPDATE audit_leaves SET idx = ? WHERE idx = ?', i - 1, i)(b);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'ENTRY_DELETED', 13);
  });

  it('detects an inserted entry', async () => {
    for (let i = 39; i >= 13; i--) run('UPDATE audit_leaves SET idx = ? WHERE idx = ?', i + 1, i)(b);
    const e = sampleEntry();
    run(
      'INSERT INTO audit_leaves (idx, entry_id, canonical, leaf_hash, tenant_id, actor_id, action, occurred_at) ' +
        "VALUES (13, ?, ?, ?, 't1', 'op-x', 'contact.reveal', 0)",
      e.entryId,
      encodeAuditEntry(e),
      leafHash(encodeAuditEntry(e)),
    )(b);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'ENTRY_INSERTED', 13);
  });

  it('detects two entries swapped', async () => {
    const [a, c] = await b.store.getEntries(13, 15);
    run('UPDATE audit_leaves SET idx = -1 WHERE idx = 13')(b);
    run('UPDATE audit_leaves SET idx = 13 WHERE idx = 14')(b);
    run('UPDATE audit_leaves SET idx = 14 WHERE idx = -1')(b);
    expect((await b.store.getEntries(13, 15)).map((l) => l.entryId)).toEqual([c!.entryId, a!.entryId]);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'ENTRY_REORDERED', 13);
  });

  it('detects a replaced tree head: a forged signature, and a validly signed head of another root', async () => {
    const h20 = b.heads[1]!;
    const sig = h20.jws.lastIndexOf('.') + 3;
    const forged = h20.jws.slice(0, sig) + (h20.jws[sig] === 'A' ? 'B' : 'A') + h20.jws.slice(sig + 1);
    run('UPDATE audit_tree_heads SET jws = ? WHERE tree_size = 20', forged)(b);
    const r1 = await verifyAuditLog({ store: b.store, publicKeys: b.keys });
    expectFailure(r1, 'STH_SIGNATURE_INVALID');
    expect(r1.ok === false && r1.treeSize).toBe(20);

    // Someone with the key re-signs size 20 over another root: heads 10 and 30 still match the entries.
    const fakeRoot = 'ab'.repeat(32);
    const jws = await b.signer.sign(
      encodeTreeHeadPayload({
        logId: h20.logId,
        treeSize: 20,
        rootHash: fakeRoot,
        timestamp: h20.timestamp,
      }),
    );
    run('UPDATE audit_tree_heads SET root_hash = ?, jws = ? WHERE tree_size = 20', fakeRoot, jws)(b);
    const r2 = await verifyAuditLog({ store: b.store, publicKeys: b.keys });
    expectFailure(r2, 'FORK');
    expect(r2.ok === false && r2.treeSize).toBe(20);
    expect(r2.ok === false && r2.detail).toMatch(/size 20.*size 30/);
  });

  it('detects truncation below a witnessed head (rollback), even with the heads and head record rewritten', async () => {
    run('DELETE FROM audit_leaves WHERE idx >= 25')(b);
    run('DELETE FROM audit_leaf_resources WHERE idx >= 25')(b);
    run('DELETE FROM audit_tree_heads WHERE tree_size > 25')(b);
    const frontier = await frontierFromStore(b.store, 25);
    run('UPDATE audit_head SET size = 25, root = ? WHERE id = 1', frontierRoot(frontier))(b);
    // Without the witness the truncated log is self-consistent; the witnessed head is what exposes it.
    expect(await verifyAuditLog({ store: b.store, publicKeys: b.keys })).toMatchObject({ ok: true, treeSize: 25 });
    const r = await verifyAuditLog({ store: b.store, publicKeys: b.keys, trustedSth: trusted });
    expectFailure(r, 'ROLLBACK', 25);
    expect(r.ok === false && r.treeSize).toBe(40);
  });

  it('detects a different log rebuilt and re-signed with the same key (fork against the witness)', async () => {
    const other = await buildLog(path.join(root, 'rebuilt'), path.join(b.dir, 'key.pem'));
    try {
      // The rebuilt log verifies on its own: only the witnessed head of the real log shows the fork.
      expect(await verifyAuditLog({ store: other.store, publicKeys: b.keys })).toMatchObject({ ok: true });
      const r = await verifyAuditLog({ store: other.store, publicKeys: b.keys, trustedSth: trusted });
      expectFailure(r, 'FORK');
      expect(r.ok === false && r.treeSize).toBe(40);
      const small = b.heads[0]!;
      const r2 = await verifyAuditLog({ store: other.store, publicKeys: b.keys, trustedSth: small });
      expectFailure(r2, 'FORK');
      expect(r2.ok === false && r2.detail).toMatch(/pinned head and head #0 both have size 10/);
    } finally {
      await other.store.close();
    }
  });

  it('refuses heads signed by an unknown key', async () => {
    const stranger = await LocalEd25519Signer.fromFile(path.join(root, 'stranger.pem'));
    const r = await verifyAuditLog({ store: b.store, publicKeys: [await stranger.publicJwk()] });
    expectFailure(r, 'STH_SIGNATURE_INVALID');
    expect(r.ok === false && r.detail).toContain('STH_UNKNOWN_KID');
  });

  it('detects entries changed after the last signed head through the stored hashes and head record', async () => {
    const writer = new FencedLogWriter(b.store, 2);
    await writer.open();
    await writer.append([sampleEntry(), sampleEntry()]);
    writer.close();
    expect(await verifyAuditLog({ store: b.store, publicKeys: b.keys })).toMatchObject({
      ok: true,
      treeSize: 42,
      unsignedFrom: 40,
    });
    const e = encodeAuditEntry(sampleEntry());
    run('UPDATE audit_leaves SET canonical = ?, leaf_hash = ? WHERE idx = 41', e, leafHash(e))(b);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'ENTRY_MODIFIED', 41);
    run('UPDATE audit_nodes SET hash = ? WHERE id = ?', leafHash(e), flatIndex(0, 41))(b);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'HEAD_RECORD_MISMATCH');
  });

  it('proves an entry against the newest signed head; the proof checks out and names the key', async () => {
    const [leaf] = await b.store.getEntries(17, 18);
    const bundle = await proveEntry({ store: b.store, entryId: leaf!.entryId, publicKeys: b.keys });
    expect(bundle).toMatchObject({ leafIndex: 17, treeSize: 40, sth: { treeSize: 40, kid: b.signer.kid } });
    expect(JSON.parse(JSON.stringify(bundle))).toEqual(bundle);
    verifyInclusion(
      Buffer.from(bundle.leafHash, 'hex'),
      17,
      40,
      bundle.proof.map((p) => Buffer.from(p, 'hex')),
      Buffer.from(bundle.sth.rootHash, 'hex'),
    );
    expect(leafHash(Buffer.from(bundle.entry, 'base64')).toString('hex')).toBe(bundle.leafHash);
    const older = await proveEntry({ store: b.store, entryId: leaf!.entryId, treeSize: 20 });
    expect(older.treeSize).toBe(20);
    await expect(proveEntry({ store: b.store, entryId: 'nope' })).rejects.toMatchObject({ code: 'ENTRY_NOT_FOUND' });
    await expect(proveEntry({ store: b.store, entryId: leaf!.entryId, treeSize: 10 })).rejects.toMatchObject({
      code: 'NOT_YET_SIGNED',
    });
    // A tampered interior node makes the store unable to prove: refused, not handed out.
    run('UPDATE audit_nodes SET hash = ? WHERE id = ?', Buffer.alloc(32, 9), flatIndex(4, 0))(b);
    await expect(proveEntry({ store: b.store, entryId: leaf!.entryId })).rejects.toMatchObject({
      code: 'PROOF_INVALID',
    });
  });
});

describe('pruneAuditLog (retention)', () => {
  let root: string;
  let b: Built;
  let trusted: StoredTreeHead;

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sealpost-audit-prune-'));
    b = await buildLog(path.join(root, 'log'));
    trusted = (await b.witness.latest())!;
  });
  afterEach(async () => {
    await b.store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('prunes the old prefix; the rest, its proofs and every witnessed head still verify', async () => {
    const dry = await pruneAuditLog({ store: b.store, before: T0 + 23_500, publicKeys: b.keys, dryRun: true });
    expect(dry).toMatchObject({ previous: 0, prunedBefore: 24, entriesPruned: 24, stoppedBy: 'time', dryRun: true });
    expect(await b.store.getEntries(0, 40)).toHaveLength(40);

    const [old] = await b.store.getEntries(5, 6);
    const [kept] = await b.store.getEntries(30, 31);
    const done = await pruneAuditLog({ store: b.store, before: T0 + 23_500, publicKeys: b.keys, trustedSth: trusted });
    expect(done).toMatchObject({ prunedBefore: 24, entriesPruned: 24 });
    expect(await b.store.getEntries(0, 40)).toHaveLength(16);
    expect(b.store.db.prepare('SELECT COUNT(*) FROM audit_leaf_resources WHERE idx < 24').pluck().get()).toBe(0);

    // Heads 10 and 20 are below the prune point: checked by consistency proofs to the stored prefix.
    const r = await verifyAuditLog({ store: b.store, publicKeys: b.keys, trustedSth: b.heads[0]! });
    expect(r).toMatchObject({ ok: true, treeSize: 40, prunedBefore: 24, headsChecked: 5 });
    expect(await verifyAuditLog({ store: b.store, publicKeys: b.keys, trustedSth: trusted })).toMatchObject({
      ok: true,
    });
    await expect(proveEntry({ store: b.store, entryId: old!.entryId })).rejects.toMatchObject({
      code: 'ENTRY_NOT_FOUND',
    });
    await expect(proveEntry({ store: b.store, entryId: kept!.entryId })).resolves.toMatchObject({ leafIndex: 30 });
  });

  it('after pruning, still detects an edited remaining entry and a tampered pruned prefix', async () => {
    await pruneAuditLog({ store: b.store, before: T0 + 23_500, publicKeys: b.keys });
    const e = encodeAuditEntry(sampleEntry());
    const [row] = await b.store.getEntries(31, 32);
    run('UPDATE audit_leaves SET canonical = ? WHERE idx = 31', e)(b);
    expectFailure(await verifyAuditLog({ store: b.store, publicKeys: b.keys }), 'ENTRY_MODIFIED', 31);
    run('UPDATE audit_leaves SET canonical = ? WHERE idx = 31', row!.canonical)(b);
    expect(await verifyAuditLog({ store: b.store, publicKeys: b.keys })).toMatchObject({ ok: true });

    // A node inside the pruned prefix (covering leaves 8–9): head 10 no longer fits the prefix.
    run('UPDATE audit_nodes SET hash = ? WHERE id = ?', Buffer.alloc(32, 7), flatIndex(1, 4))(b);
    const r = await verifyAuditLog({ store: b.store, publicKeys: b.keys });
    expectFailure(r, 'PRUNED_PREFIX_MISMATCH', 0);
    expect(r.ok === false && r.treeSize).toBe(10);
  });

  it('never prunes past the newest signed head, and refuses to prune a log that does not verify', async () => {
    const writer = new FencedLogWriter(b.store, 2);
    await writer.open();
    await writer.append([sampleEntry({ occurredAt: T0 }), sampleEntry({ occurredAt: T0 })]);
    writer.close();
    const r = await pruneAuditLog({ store: b.store, before: T0 + 10_000_000, publicKeys: b.keys, dryRun: true });
    expect(r).toMatchObject({ prunedBefore: 40, stoppedBy: 'signed-head' });

    run('UPDATE audit_leaves SET canonical = ? WHERE idx = 3', encodeAuditEntry(sampleEntry()))(b);
    await expect(pruneAuditLog({ store: b.store, before: T0 + 23_500, publicKeys: b.keys })).rejects.toMatchObject({
      code: 'LOG_NOT_VERIFIED',
    });
    expect(await b.store.prunedBefore()).toBe(0);
    expect(await b.store.getEntries(0, 5)).toHaveLength(5);
  });
});

describeRepositoryContract<{ store: AuditLogStore; tamper: (index: number, bytes: Buffer) => Promise<void> }>(
  'verifyAuditLog edit detection',
  {
    async sqlite({ file }) {
      const store = SqliteAuditLogStore.open(file);
      return {
        store,
        tamper: async (i, bytes) =>
          void store.db.prepare('UPDATE audit_leaves SET canonical = ? WHERE idx = ?').run(bytes, i),
        close: () => store.close(),
      };
    },
    async mongo({ url, database }) {
      const handle = await connectMongo({
        url,
        database,
        appName: 'audit-verify-test',
        serverSelectionTimeoutMs: 5000,
      });
      const store = await MongoAuditLogStore.open(handle.db, () => handle.close());
      return {
        store,
        tamper: async (i, bytes) =>
          void (await handle.db
            .collection('audit_leaves')
            .updateOne({ _id: i as never }, { $set: { canonical: new Binary(bytes) } })),
        close: () => store.close(),
      };
    },
  },
  (ctx) => {
    it('names the edited entry, and verifies the pruned remainder', async () => {
      const { store, tamper } = ctx();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealpost-audit-key-'));
      try {
        const signer = await LocalEd25519Signer.fromFile(path.join(dir, 'key.pem'));
        const witness = new FileWitness(path.join(dir, 'witness.jsonl'));
        const writer = new FencedLogWriter(store, 1);
        await writer.open();
        for (let k = 0; k < 3; k++) {
          await writer.append(
            Array.from({ length: 6 }, (_, i) => sampleEntry({ occurredAt: T0 + (k * 6 + i) * 1000 })),
          );
          await signTreeHead({ store, signer, witness, logId: LOG_ID, now: () => (clock += 1000) });
        }
        writer.close();
        const keys = [await signer.publicJwk()];
        const trustedSth = (await witness.latest())!;
        expect(await verifyAuditLog({ store, publicKeys: keys, trustedSth })).toMatchObject({ ok: true, treeSize: 18 });
        await pruneAuditLog({ store, before: T0 + 7_500, publicKeys: keys });
        expect(await verifyAuditLog({ store, publicKeys: keys, trustedSth })).toMatchObject({
          ok: true,
          prunedBefore: 8,
        });
        await tamper(11, encodeAuditEntry(sampleEntry()));
        expectFailure(await verifyAuditLog({ store, publicKeys: keys, trustedSth }), 'ENTRY_MODIFIED', 11);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
