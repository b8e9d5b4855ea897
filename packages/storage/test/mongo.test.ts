import { MongoServerError } from 'mongodb';
import {
  type CollectionIndexes,
  connectMongo,
  ensureIndexes,
  ensureServiceUser,
  type IndexSpec,
  MONGO_DURABILITY,
} from '../src/index';
import { describeWithMongoPeer } from '../src/testing';

describeWithMongoPeer('MongoDB helpers [mongo]', (env) => {
  it('connects with majority/journaled writes, majority reads and retries, and closes twice safely', async () => {
    const { url, database } = env();
    const handle = await connectMongo({ url, database, appName: 'storage-test', serverSelectionTimeoutMs: 5000 });
    try {
      expect(handle.db.databaseName).toBe(database);
      expect(handle.db.writeConcern).toMatchObject({ w: 'majority', journal: true });
      expect(handle.db.readConcern?.level).toBe('majority');
      expect(handle.client.options).toMatchObject({ retryWrites: true, retryReads: true, appName: 'storage-test' });
      await handle.db.collection('things').insertOne({ _id: 'a' as never, n: 1 });
      expect(await handle.db.collection('things').findOne({})).toEqual({ _id: 'a', n: 1 });
    } finally {
      await handle.close();
      await handle.close();
    }
    expect(MONGO_DURABILITY).toMatchObject({ retryWrites: true, retryReads: true });
  });

  describe('ensureIndexes', () => {
    const specs: CollectionIndexes = {
      contacts: [
        { name: 'tenant_handle', key: { tenantId: 1, handle: 1 }, unique: true },
        { name: 'tenant_created', key: { tenantId: 1, createdAt: -1 } },
      ],
      // Uniqueness over an optional value: a separate document per value, not a sparse index.
      contact_emails: [{ name: 'tenant_email', key: { tenantId: 1, emailIndex: 1 }, unique: true }],
    };

    it('creates the declared indexes, is idempotent, and the unique ones are enforced', async () => {
      const { db } = env();
      await ensureIndexes(db, specs);
      await ensureIndexes(db, specs);
      const names = (await db.collection('contacts').listIndexes().toArray()).map((ix) => ix['name']).sort();
      expect(names).toEqual(['_id_', 'tenant_created', 'tenant_handle']);
      await db.collection('contact_emails').insertOne({ tenantId: 't1', emailIndex: 'x' });
      await db.collection('contact_emails').insertOne({ tenantId: 't2', emailIndex: 'x' });
      await expect(db.collection('contact_emails').insertOne({ tenantId: 't1', emailIndex: 'x' })).rejects.toThrow(
        expect.objectContaining({ code: 11000 }),
      );
    });

    it.each<[string, IndexSpec[]]>([
      ['other keys under the same name', [{ name: 'tenant_handle', key: { handle: 1 } }]],
      ['the same keys without unique', [{ name: 'tenant_handle', key: { tenantId: 1, handle: 1 } }]],
      ['the same keys under another name', [{ name: 'renamed', key: { tenantId: 1, handle: 1 }, unique: true }]],
    ])('reports STORAGE_INDEX_CONFLICT for %s', async (_label, changed) => {
      const { db } = env();
      await ensureIndexes(db, specs);
      await expect(ensureIndexes(db, { contacts: changed })).rejects.toThrow(
        expect.objectContaining({ code: 'STORAGE_INDEX_CONFLICT', message: expect.stringContaining('contacts') }),
      );
    });
  });

  describe('ensureServiceUser', () => {
    it('creates the user, then updates it, or reports the server as unsupported — never a silent no-op', async () => {
      const { db, database } = env();
      const admin = db.client.db('admin');
      const first = await ensureServiceUser(admin, 'storage-test', 'a-long-enough-password-1', database);
      const probe = await admin.command({ usersInfo: 1 }).then(
        () => 'supported',
        (err: unknown) => (err instanceof MongoServerError && err.code === 59 ? 'unsupported' : 'error'),
      );
      if (probe === 'unsupported') {
        // FerretDB v1 has no user management commands at all.
        expect(first).toEqual({
          status: 'unsupported',
          user: 'storage-test',
          reason: expect.stringMatching(/CommandNotFound/),
        });
        return;
      }
      try {
        expect(first.status).toBe('created');
        const again = await ensureServiceUser(admin, 'storage-test', 'a-long-enough-password-2', database);
        expect(again.status).toBe('updated');
        const info = await admin.command({ usersInfo: 'storage-test' });
        expect(info['users'][0].roles).toEqual([{ role: 'readWrite', db: database }]);
      } finally {
        await admin.command({ dropUser: 'storage-test' }).catch(() => undefined);
      }
    });

    it('rejects a short password without echoing it', async () => {
      const { db, database } = env();
      await expect(ensureServiceUser(db.client.db('admin'), 'svc', 'short-Pw1', database)).rejects.toThrow(
        expect.objectContaining({
          code: 'STORAGE_INVALID_ARGUMENT',
          message: expect.not.stringContaining('short-Pw1'),
        }),
      );
    });
  });
});
