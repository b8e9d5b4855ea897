import { StorageError } from '../errors';
import { connectMongo, mongoHostsOf } from './connect-mongo';

describe('mongoHostsOf', () => {
  it.each([
    ['mongodb://127.0.0.1:27018/db', '127.0.0.1:27018'],
    ['mongodb://svc:pa55word@db1:27017,db2:27017/vault?replicaSet=rs0', 'db1:27017,db2:27017'],
    ['mongodb+srv://u:p@cluster.example.net/?retryWrites=true', 'cluster.example.net'],
    ['mongodb://u:bad/pass@word@h:1/x', 'h:1'],
    ['postgres://u:p@h/x', '<unparseable MongoDB URL>'],
  ])('%s → %s', (url, hosts) => {
    expect(mongoHostsOf(url)).toBe(hosts);
  });
});

describe('connectMongo', () => {
  it('fails with STORAGE_UNAVAILABLE naming host:port but not the credentials', async () => {
    const started = Date.now();
    let caught: unknown;
    try {
      // Port 1 on loopback refuses connections: nothing listens there.
      await connectMongo({
        url: 'mongodb://vault-user:Sup3rSecretPw@127.0.0.1:1/vault?authSource=admin',
        database: 'vault',
        appName: 'test',
        serverSelectionTimeoutMs: 400,
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StorageError);
    const err = caught as StorageError;
    expect(err.code).toBe('STORAGE_UNAVAILABLE');
    expect(err.message).toBe('MongoDB at 127.0.0.1:1 unreachable within 400 ms');
    const everything = `${err.message} ${String(err.stack)} ${String(err.cause)}`;
    expect(everything).not.toContain('Sup3rSecretPw');
    expect(everything).not.toContain('vault-user');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('rejects an invalid URL without echoing it', async () => {
    await expect(
      connectMongo({ url: 'mongodb://u:Sup3rSecretPw@h:notaport/x', database: 'x', appName: 't' }),
    ).rejects.toThrow(expect.objectContaining({ code: 'STORAGE_INVALID_ARGUMENT' }));
    await connectMongo({ url: 'mongodb://u:Sup3rSecretPw@h:notaport/x', database: 'x', appName: 't' }).catch(
      (err: Error) => {
        expect(err.message).not.toContain('Sup3rSecretPw');
        expect(err.cause).toBeUndefined();
      },
    );
  });

  it('rejects a database name that is not a plain identifier', async () => {
    await expect(
      connectMongo({ url: 'mongodb://127.0.0.1:1', database: 'a.b', appName: 't', serverSelectionTimeoutMs: 100 }),
    ).rejects.toThrow(expect.objectContaining({ code: 'STORAGE_INVALID_ARGUMENT' }));
  });
});
