import { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import {
  ContactCipher,
  DecryptionError,
  InMemoryDataKeyStore,
  InMemoryTenantKeyStore,
  KeyHierarchy,
  LocalKeyring,
  kmsKeyIdResolver,
  unwrapDataKey,
  wrapDataKey,
} from '@sealpost/crypto';
import { CONTACT_ID, indexesOf, newContactId, normalizeFields, toSealable, type RawContactFields } from '../../domain';
import { WorkerRowPreparer } from './worker-row-preparer';

const GB = { defaultRegion: 'GB' };
const ROWS: { fields: RawContactFields; policy: { defaultRegion?: string; foldEmailAliases?: boolean } }[] = [
  { fields: { email: ' Jane.Doe+news@GMAIL.com ', phone: '07911 123456', name: ' Jane ' }, policy: GB },
  { fields: { email: 'Jane.Doe+news@GMAIL.com' }, policy: { foldEmailAliases: true } },
  { fields: { email: 'user@bücher.example' }, policy: {} },
  { fields: { phone: '+1 415 555 2671' }, policy: {} },
  { fields: { email: 'not-an-email' }, policy: {} },
  { fields: { phone: '07911 123456' }, policy: {} }, // national number without a default region
  { fields: { name: 'only a name' }, policy: {} },
  { fields: { email: 'x@example.com', name: 'bad\u202ename' }, policy: {} },
];

/**
 * A started preparer whose reported failures are collected, busy with a request of enough rows to last a good while (so
 * whatever the test does to its worker happens before it can answer).
 */
async function busyPreparer() {
  const errors: unknown[] = [];
  const preparer = new WorkerRowPreparer((error) => errors.push(error));
  expect(await preparer.whenReady()).toBe(true);
  const rows = Array.from({ length: 20_000 }, (_, i) => ROWS[i % ROWS.length]!);
  const inFlight = preparer.prepareMany(rows);
  const worker = (preparer as unknown as { worker: Worker }).worker;
  /** Whether the request was left wholly to the caller. */
  const leftToCaller = async (): Promise<boolean> => {
    const answered = await inFlight;
    return rows.every((_, i) => answered[i] === undefined);
  };
  return { preparer, errors, worker, leftToCaller };
}

function inThread(row: (typeof ROWS)[number]) {
  try {
    return { fields: normalizeFields(row.fields, row.policy) };
  } catch {
    return undefined;
  }
}

describe('WorkerRowPreparer', () => {
  it('normalises on a worker thread exactly as the domain does; invalid rows are left to the caller', async () => {
    const preparer = new WorkerRowPreparer();
    const workerOf = () => (preparer as unknown as { worker?: unknown }).worker;
    try {
      // No thread until the first import needs one; until it is ready, rows are left to the caller (no waiting).
      expect(workerOf()).toBeUndefined();
      expect(preparer.accepting()).toBe(false);
      expect(await preparer.prepareMany(ROWS)).toEqual(ROWS.map(() => undefined));
      expect(workerOf()).toBeDefined();
      expect(await preparer.whenReady()).toBe(true);
      expect(preparer.accepting()).toBe(true);
      const results = await preparer.prepareMany(ROWS);
      expect(results).toEqual(ROWS.map(inThread));
      // The invalid ones really are invalid, and valid ones came back normalised.
      expect(results.map((r) => r === undefined)).toEqual([false, false, false, false, true, true, true, true]);
      expect(results[0]).toEqual({
        fields: { email: 'jane.doe+news@gmail.com', phone: '+447911123456', name: 'Jane' },
      });
      // Concurrent requests are answered each with its own results.
      const [a, b] = await Promise.all([
        preparer.prepareMany(ROWS.slice(0, 2)),
        preparer.prepareMany(ROWS.slice(3, 4)),
      ]);
      expect(a).toEqual(ROWS.slice(0, 2).map(inThread));
      expect(b).toEqual([{ fields: { phone: '+14155552671' } }]);
    } finally {
      await preparer.close();
    }
  });

  it('with keys, also indexes each row and seals it as a new contact that opens once its key is stored', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sealpost-preparer-'));
    const preparer = new WorkerRowPreparer();
    try {
      const keys = new KeyHierarchy({
        kms: await LocalKeyring.open(path.join(dir, 'keyring.json')),
        kmsKeyIdFor: kmsKeyIdResolver({ template: 'local-{tenant}' }),
        tenantKeys: new InMemoryTenantKeyStore(),
      });
      const indexKeys = await keys.currentIndexKeys('tenant-a');
      const kek = await keys.currentKek('tenant-a');
      expect(await preparer.whenReady()).toBe(true);
      // The keys cross as key objects: nothing here exports their bytes to hand them over.
      const exported = jest.spyOn(Object.getPrototypeOf(kek.key) as KeyObject, 'export');
      const results = await preparer.prepareMany(ROWS, { indexKeys, kek, nowMs: Date.now() });
      expect(exported).not.toHaveBeenCalled();
      exported.mockRestore();
      const dataKeys = new InMemoryDataKeyStore();
      const cipher = new ContactCipher({ keys, dataKeys });
      const ids = new Set<string>();
      for (const [i, row] of ROWS.entries()) {
        const expected = inThread(row);
        const result = results[i];
        if (expected === undefined) {
          expect(result).toBeUndefined();
          continue;
        }
        expect(result?.fields).toEqual(expected.fields);
        // The same blind indexes this thread computes with the same keys.
        expect(result?.indexes).toEqual(indexesOf([indexKeys], expected.fields));
        const draft = result!.draft!;
        expect(draft.contactId).toMatch(CONTACT_ID);
        ids.add(draft.contactId);
        await dataKeys.put('tenant-a', draft.contactId, draft.dataKey);
        expect(await cipher.open('tenant-a', draft.contactId, draft.record)).toEqual(toSealable(expected.fields));
        // Bound to its contact and tenant like any record: under its own data key, wrapped properly for another
        // contact or for another tenant, the record itself fails authentication.
        const plain = unwrapDataKey(kek, draft.contactId, draft.dataKey);
        const elsewhere = newContactId(Date.now());
        await dataKeys.put('tenant-a', elsewhere, wrapDataKey(kek, elsewhere, plain));
        const otherKek = await keys.currentKek('tenant-b');
        await dataKeys.put('tenant-b', draft.contactId, wrapDataKey(otherKek, draft.contactId, plain));
        plain.key.fill(0);
        for (const [tenant, contact] of [
          ['tenant-a', elsewhere],
          ['tenant-b', draft.contactId],
        ] as const) {
          const opened = cipher.open(tenant, contact, draft.record);
          await expect(opened).rejects.toThrow(DecryptionError);
          await expect(opened).rejects.toMatchObject({ part: 'record' });
        }
      }
      expect(ids.size).toBe(4);
    } finally {
      await preparer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails safe: a reply that cannot be read gives the worker up, and the waiting batch is left to the caller', async () => {
    const { preparer, errors, worker, leftToCaller } = await busyPreparer();
    // What Node emits when a message from the worker fails to deserialise (not something these plain rows can cause).
    const unreadable = new Error('unreadable reply');
    worker.emit('messageerror', unreadable);
    expect(await leftToCaller()).toBe(true);
    expect(errors).toEqual([unreadable]);
    expect(preparer.accepting()).toBe(false);
    await preparer.close();
  });

  it('fails safe: a worker that dies mid-request, or is gone, leaves every row to the caller; nothing hangs', async () => {
    const { preparer, errors, worker, leftToCaller } = await busyPreparer();
    await worker.terminate();
    expect(await leftToCaller()).toBe(true);
    expect(await preparer.prepareMany(ROWS)).toEqual(ROWS.map(() => undefined));
    expect(await preparer.whenReady()).toBe(false);
    expect(preparer.accepting()).toBe(false);
    expect(errors).toEqual([new Error('the import worker stopped (exit code 1)')]);
    await preparer.close();
    expect(errors).toHaveLength(1); // closing it is no failure
  });

  it('reports no failure when it is closed mid-request, and the request still settles', async () => {
    const { preparer, errors, leftToCaller } = await busyPreparer();
    await preparer.close();
    expect(await leftToCaller()).toBe(true);
    expect(errors).toEqual([]);
  });
});
