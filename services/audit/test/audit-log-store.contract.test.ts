import { Binary } from 'mongodb';
import { connectMongo } from '@sealpost/storage';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { type AuditEntry, encodeAuditEntry, leafHash, merkleRoot, verifyInclusion } from '@sealpost/audit-format';
import { emptyFrontier, frontierFromStore, inclusionProofFromStore, rootFromStore } from '../src/domain';
import { MongoAuditLogStore } from '../src/adapters/mongo/mongo-audit-log-store';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { type AuditLogStore, AuditStoreError, type StoredTreeHead } from '../src/ports/audit-log-store';
import { buildBatch, sampleEntry } from './fixtures';

interface Ctx {
  store: AuditLogStore;
  raw: { kind: 'sqlite' } | { kind: 'mongo'; db: import('mongodb').Db };
  close(): Promise<void>;
}

async function appendAll(store: AuditLogStore, batches: AuditEntry[][], token = 1): Promise<AuditEntry[]> {
  let frontier = await frontierFromStore(store, (await store.readHead()).size);
  const all: AuditEntry[] = [];
  for (const entries of batches) {
    const built = buildBatch(frontier, entries, token);
    await store.append(built.batch);
    frontier = built.frontier;
    all.push(...entries);
  }
  return all;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(AuditStoreError);
  await expect(p).rejects.toMatchObject({ code });
}

describeRepositoryContract<Ctx>(
  'AuditLogStore',
  {
    async sqlite({ file }) {
      const store = SqliteAuditLogStore.open(file);
      return { store, raw: { kind: 'sqlite' }, close: () => store.close() };
    },
    async mongo({ url, database }) {
      const handle = await connectMongo({ url, database, appName: 'audit-test', serverSelectionTimeoutMs: 5000 });
      const store = await MongoAuditLogStore.open(handle.db, () => handle.close());
      return { store, raw: { kind: 'mongo', db: handle.db }, close: () => store.close() };
    },
  },
  (ctx) => {
    it('starts empty and appends grouped batches whose head, nodes and proofs match the RFC 6962 tree', async () => {
      const { store } = ctx();
      expect(await store.readHead()).toMatchObject({ size: 0, token: 0 });
      const entries = await appendAll(store, [
        Array.from({ length: 5 }, () => sampleEntry()),
        Array.from({ length: 8 }, () => sampleEntry()),
      ]);
      const hashes = entries.map((e) => leafHash(encodeAuditEntry(e)));
      const head = await store.readHead();
      expect(head.size).toBe(13);
      expect(head.root.equals(merkleRoot(hashes))).toBe(true);
      expect((await rootFromStore(store, 7, head.size)).equals(merkleRoot(hashes.slice(0, 7)))).toBe(true);
      for (const size of [1, 6, 13]) {
        for (let i = 0; i < size; i++) {
          const proof = await inclusionProofFromStore(store, i, size, head.size);
          verifyInclusion(hashes[i]!, i, size, proof, merkleRoot(hashes.slice(0, size)));
        }
      }
    });

    it('refuses a batch at a stale size and changes nothing (HEAD_CONFLICT)', async () => {
      const { store } = ctx();
      const first = buildBatch(emptyFrontier(), [sampleEntry(), sampleEntry()], 1);
      await store.append(first.batch);
      const before = await store.readHead();
      const rival = buildBatch(emptyFrontier(), [sampleEntry()], 1);
      await expectCode(store.append(rival.batch), 'HEAD_CONFLICT');
      // The same batch again is a conflict too: the head already moved past it.
      await expectCode(store.append(first.batch), 'HEAD_CONFLICT');
      expect(await store.readHead()).toEqual(before);
      expect((await store.getEntries(0, 10)).map((l) => l.entryId)).toEqual(first.batch.leaves.map((l) => l.entryId));
    });

    it('fences: a smaller token than the stored one is refused for append and fence', async () => {
      const { store } = ctx();
      let f = buildBatch(emptyFrontier(), [sampleEntry()], 3);
      await store.append(f.batch);
      expect((await store.readHead()).token).toBe(3);
      await expectCode(store.fence(2), 'FENCED');
      const stale = buildBatch(f.frontier, [sampleEntry()], 2);
      await expectCode(store.append(stale.batch), 'FENCED');
      const fencedHead = await store.fence(5);
      expect(fencedHead).toMatchObject({ size: 1, token: 5 });
      const old = buildBatch(f.frontier, [sampleEntry()], 4);
      await expectCode(store.append(old.batch), 'FENCED');
      f = buildBatch(f.frontier, [sampleEntry()], 5);
      await expect(store.append(f.batch)).resolves.toMatchObject({ size: 2, token: 5 });
    });

    it('refuses an entry id that is already in the log (LEAF_CONFLICT) and leaves the head alone', async () => {
      const { store } = ctx();
      const e = sampleEntry();
      const f = buildBatch(emptyFrontier(), [e], 1);
      await store.append(f.batch);
      const dup = buildBatch(f.frontier, [sampleEntry(), { ...e }], 1);
      await expectCode(store.append(dup.batch), 'LEAF_CONFLICT');
      expect((await store.readHead()).size).toBe(1);
      expect(await store.getEntries(0, 10)).toHaveLength(1);
    });

    it('rejects malformed batches (INVALID_BATCH)', async () => {
      const { store } = ctx();
      const f = buildBatch(emptyFrontier(), [sampleEntry(), sampleEntry()], 1);
      const gap = { ...f.batch, leaves: [f.batch.leaves[0]!, { ...f.batch.leaves[1]!, index: 5 }] };
      await expectCode(store.append(gap), 'INVALID_BATCH');
      await expectCode(store.append({ ...f.batch, leaves: [] }), 'INVALID_BATCH');
      await expectCode(store.append({ ...f.batch, token: 0 }), 'INVALID_BATCH');
      expect((await store.readHead()).size).toBe(0);
    });

    it('reads entries by range, by entry id, and tells which ids exist', async () => {
      const { store } = ctx();
      const entries = await appendAll(store, [[sampleEntry(), sampleEntry(), sampleEntry()]]);
      const got = await store.getEntries(1, 99);
      expect(got.map((l) => l.index)).toEqual([1, 2]);
      expect(got[0]!.entryId).toBe(entries[1]!.entryId);
      expect(got[0]!.leafHash.equals(leafHash(got[0]!.canonical))).toBe(true);
      expect((await store.findByEntryId(entries[2]!.entryId))?.index).toBe(2);
      expect(await store.findByEntryId('nope')).toBeUndefined();
      const ids = await store.existingEntryIds([entries[0]!.entryId, 'missing']);
      expect([...ids]).toEqual([entries[0]!.entryId]);
    });

    it('queries by contact, actor, action and time, paginated in index order', async () => {
      const { store } = ctx();
      const mk = (i: number, o: Partial<AuditEntry>): AuditEntry =>
        sampleEntry({ occurredAt: 1_000_000 + i * 1000, ...o });
      const entries = await appendAll(store, [
        [
          mk(0, { resourceIds: ['ct-x'], actorId: 'op-a' }),
          mk(1, { resourceIds: ['ct-y'], actorId: 'op-b', action: 'contact.find' }),
          mk(2, { resourceIds: ['ct-y', 'ct-x'], actorId: 'op-a' }),
        ],
        [mk(3, { resourceIds: ['ct-x'], actorId: 'op-b', tenantId: 't2' }), mk(4, { resourceIds: ['ct-x'] })],
      ]);
      const idx = async (q: Parameters<AuditLogStore['queryEntries']>[0]): Promise<number[]> =>
        (await store.queryEntries(q)).entries.map((e) => e.index);
      expect(await idx({ resourceId: 'ct-x', pageSize: 10 })).toEqual([0, 2, 3, 4]);
      expect(await idx({ resourceId: 'ct-x', tenantId: 't1', pageSize: 10 })).toEqual([0, 2, 4]);
      expect(await idx({ actorId: 'op-b', pageSize: 10 })).toEqual([1, 3]);
      expect(await idx({ action: 'contact.find', pageSize: 10 })).toEqual([1]);
      expect(await idx({ fromMs: 1_001_000, toMs: 1_003_000, pageSize: 10 })).toEqual([1, 2]);

      const pages: number[][] = [];
      let token = '';
      do {
        const page = await store.queryEntries({ resourceId: 'ct-x', pageSize: 3, pageToken: token });
        pages.push(page.entries.map((e) => e.index));
        token = page.nextPageToken;
      } while (token !== '');
      expect(pages).toEqual([[0, 2, 3], [4]]);
      expect(entries).toHaveLength(5);
      await expectCode(store.queryEntries({ pageSize: 10, pageToken: 'garbage!' }), 'INVALID_QUERY');
      await expectCode(store.queryEntries({ pageSize: 0 }), 'INVALID_QUERY');
    });

    it('stores signed tree heads idempotently and answers latest / by size / all', async () => {
      const { store } = ctx();
      const sth = (treeSize: number, timestamp: number, jws = `jws-${treeSize}-${timestamp}`): StoredTreeHead => ({
        logId: 'log-1',
        treeSize,
        rootHash: 'ab'.repeat(32),
        timestamp,
        jws,
        kid: 'k1',
      });
      expect(await store.latestTreeHead()).toBeUndefined();
      await store.putTreeHead(sth(0, 10));
      await store.putTreeHead(sth(5, 20));
      await store.putTreeHead(sth(5, 30));
      await store.putTreeHead(sth(5, 30));
      await expectCode(store.putTreeHead(sth(5, 30, 'other')), 'LEAF_CONFLICT');
      expect(await store.latestTreeHead()).toEqual(sth(5, 30));
      expect(await store.treeHeadOfSize(0)).toEqual(sth(0, 10));
      expect(await store.treeHeadOfSize(4)).toBeUndefined();
      expect((await store.listTreeHeads()).map((h) => [h.treeSize, h.timestamp])).toEqual([
        [0, 10],
        [5, 20],
        [5, 30],
      ]);
    });

    it('hides and clears uncommitted leftovers of a crashed older writer above the head', async () => {
      const c = ctx();
      const { store } = c;
      const first = buildBatch(emptyFrontier(), [sampleEntry()], 1);
      await store.append(first.batch);
      const crashed = buildBatch(first.frontier, [sampleEntry({ actorId: 'ghost' }), sampleEntry()], 1);
      if (c.raw.kind === 'mongo') {
        // A writer that died after writing its leaves and nodes but before its head CAS.
        await c.raw.db.collection('audit_leaves').insertMany(
          crashed.batch.leaves.map((l) => ({
            _id: l.index as never,
            entryId: l.entryId,
            canonical: new Binary(l.canonical),
            leafHash: new Binary(l.leafHash),
            tenantId: l.tenantId,
            actorId: l.actorId,
            action: l.action,
            resourceIds: [...l.resourceIds],
            occurredAt: l.occurredAt,
            token: 1,
          })),
        );
      }
      expect(await store.getEntries(0, 10)).toHaveLength(1);
      expect(await store.findByEntryId(crashed.batch.leaves[0]!.entryId)).toBeUndefined();
      expect((await store.queryEntries({ actorId: 'ghost', pageSize: 10 })).entries).toEqual([]);
      await store.fence(2);
      const next = buildBatch(first.frontier, [sampleEntry(), sampleEntry(), sampleEntry()], 2);
      await expect(store.append(next.batch)).resolves.toMatchObject({ size: 4, token: 2 });
      const ids = (await store.getEntries(0, 10)).map((l) => l.entryId);
      expect(ids).toEqual([first.batch.leaves[0]!.entryId, ...next.batch.leaves.map((l) => l.entryId)]);
    });
  },
);
