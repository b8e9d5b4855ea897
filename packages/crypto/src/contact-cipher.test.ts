import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ContactCipher, sealNewContact } from './contact-cipher';
import { InMemoryDataKeyStore } from './data-key';
import { DecryptionError, KeyNotFoundError } from './errors';
import { InMemoryTenantKeyStore, KeyHierarchy, kmsKeyIdResolver } from './key-hierarchy';
import { LocalKeyring } from './kms/local-keyring';
import { readRecordHeader } from './record-cipher';

let dir: string;
let keys: KeyHierarchy;
let dataKeys: InMemoryDataKeyStore;
let cipher: ContactCipher;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sealpost-contact-'));
  keys = new KeyHierarchy({
    kms: await LocalKeyring.open(path.join(dir, 'keyring.json')),
    kmsKeyIdFor: kmsKeyIdResolver({ template: 'local-{tenant}' }),
    tenantKeys: new InMemoryTenantKeyStore(),
  });
  dataKeys = new InMemoryDataKeyStore();
  cipher = new ContactCipher({ keys, dataKeys });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fields = { email: 'jane@example.com', phone: '+447911123456', name: 'Jane Doe' };

describe('ContactCipher', () => {
  it('seals and opens a contact, keeping its data key only in the key store', async () => {
    const record = await cipher.seal('tenant-a', 'contact-1', fields);
    const stored = await dataKeys.get('tenant-a', 'contact-1');
    expect(stored).toBeDefined();
    expect(readRecordHeader(record)).toMatchObject({ dataKeyId: stored!.dataKeyId, kekVersion: 1 });
    expect(record.includes(Buffer.from(stored!.wrapped))).toBe(false);
    expect(await cipher.open('tenant-a', 'contact-1', record)).toEqual(fields);
  });

  it('seals a first write without asking the key store first, and stays right if the caller was wrong', async () => {
    let gets = 0;
    const counted = new ContactCipher({
      keys,
      dataKeys: {
        get: (t, c) => ((gets += 1), dataKeys.get(t, c)),
        put: (t, c, k) => dataKeys.put(t, c, k),
        rewrap: (t, c, k) => dataKeys.rewrap(t, c, k),
        delete: (t, c) => dataKeys.delete(t, c),
      },
    });
    const first = await counted.seal('tenant-a', 'contact-1', fields, { firstWrite: true });
    expect(gets).toBe(0);
    expect(await cipher.open('tenant-a', 'contact-1', first)).toEqual(fields);
    // Not a first write after all: the stored key wins, so both records stay readable.
    const again = await counted.seal('tenant-a', 'contact-1', { ...fields, name: 'Jane Smith' }, { firstWrite: true });
    expect(readRecordHeader(again).dataKeyId).toBe(readRecordHeader(first).dataKeyId);
    expect(await cipher.open('tenant-a', 'contact-1', first)).toEqual(fields);
    expect((await cipher.open('tenant-a', 'contact-1', again)).name).toBe('Jane Smith');
  });

  it('seals a new contact without a key store: stored beside it, the record opens; elsewhere it does not', async () => {
    const kek = await keys.currentKek('tenant-a');
    const sealed = sealNewContact(kek, 'contact-1', fields);
    expect(sealed.dataKey.kekVersion).toBe(kek.version);
    expect(readRecordHeader(sealed.record)).toMatchObject({ dataKeyId: sealed.dataKey.dataKeyId, kekVersion: 1 });
    // Nothing was stored: the record does not open until the key is.
    await expect(cipher.open('tenant-a', 'contact-1', sealed.record)).rejects.toBeInstanceOf(KeyNotFoundError);
    await dataKeys.put('tenant-a', 'contact-1', sealed.dataKey);
    expect(await cipher.open('tenant-a', 'contact-1', sealed.record)).toEqual(fields);
    // The key is bound to its contact: stored for another one, neither it nor the record opens there.
    await dataKeys.put('tenant-a', 'contact-2', sealed.dataKey);
    await expect(cipher.open('tenant-a', 'contact-2', sealed.record)).rejects.toBeInstanceOf(DecryptionError);
    // Each call draws a fresh key and nonce.
    const again = sealNewContact(kek, 'contact-1', fields);
    expect(again.dataKey.dataKeyId).not.toBe(sealed.dataKey.dataKeyId);
    expect(Buffer.compare(again.record, sealed.record)).not.toBe(0);
  });

  it('keeps one data key per contact across writes, with a new nonce each time', async () => {
    const first = await cipher.seal('tenant-a', 'contact-1', fields);
    const second = await cipher.seal('tenant-a', 'contact-1', { ...fields, name: 'Jane Smith' });
    expect(readRecordHeader(first).dataKeyId).toBe(readRecordHeader(second).dataKeyId);
    expect(first.equals(second)).toBe(false);
    expect(dataKeys.size).toBe(1);
    expect(await cipher.open('tenant-a', 'contact-1', first)).toEqual(fields);
    expect((await cipher.open('tenant-a', 'contact-1', second)).name).toBe('Jane Smith');
  });

  it('refuses a record moved to another contact or tenant', async () => {
    const record = await cipher.seal('tenant-a', 'contact-1', fields);
    await cipher.seal('tenant-a', 'contact-2', fields);
    await cipher.seal('tenant-b', 'contact-1', fields);
    await expect(cipher.open('tenant-a', 'contact-2', record)).rejects.toBeInstanceOf(DecryptionError);
    await expect(cipher.open('tenant-b', 'contact-1', record)).rejects.toMatchObject({ code: 'RECORD_TAMPERED' });
  });

  it('refuses a wrapped data key swapped in from another contact', async () => {
    const record = await cipher.seal('tenant-a', 'contact-1', fields);
    await cipher.seal('tenant-a', 'contact-2', fields);
    const other = (await dataKeys.get('tenant-a', 'contact-2'))!;
    await dataKeys.delete('tenant-a', 'contact-1');
    await dataKeys.put('tenant-a', 'contact-1', other);
    await expect(cipher.open('tenant-a', 'contact-1', record)).rejects.toMatchObject({
      code: 'RECORD_TAMPERED',
      part: 'data-key',
    });
  });

  it('rewraps data keys after a KEK rotation; records stay readable', async () => {
    const record = await cipher.seal('tenant-a', 'contact-1', fields);
    expect(await keys.rotateKek('tenant-a')).toBe(2);
    expect(await cipher.rewrap('tenant-a', 'contact-1')).toBe('rewrapped');
    expect((await dataKeys.get('tenant-a', 'contact-1'))!.kekVersion).toBe(2);
    expect(await cipher.rewrap('tenant-a', 'contact-1')).toBe('already-current');
    expect(await cipher.rewrap('tenant-a', 'contact-9')).toBe('missing');
    expect(await cipher.open('tenant-a', 'contact-1', record)).toEqual(fields);
    const later = await cipher.seal('tenant-a', 'contact-1', fields);
    expect(readRecordHeader(later).kekVersion).toBe(2);
  });

  it('crypto-shreds: without the data key the record cannot be opened', async () => {
    const record = await cipher.seal('tenant-a', 'contact-1', fields);
    expect(await cipher.shred('tenant-a', 'contact-1')).toBe(true);
    await expect(cipher.open('tenant-a', 'contact-1', record)).rejects.toBeInstanceOf(KeyNotFoundError);
    // A new write after erasure gets a new key; the old record stays unreadable.
    await cipher.seal('tenant-a', 'contact-1', fields);
    await expect(cipher.open('tenant-a', 'contact-1', record)).rejects.toBeInstanceOf(DecryptionError);
  });

  it('two first writes racing for one contact share one data key', async () => {
    const [a, b] = await Promise.all([
      cipher.seal('tenant-a', 'contact-1', { name: 'A' }),
      cipher.seal('tenant-a', 'contact-1', { name: 'B' }),
    ]);
    expect(await cipher.open('tenant-a', 'contact-1', a)).toEqual({ name: 'A' });
    expect(await cipher.open('tenant-a', 'contact-1', b)).toEqual({ name: 'B' });
  });
});
