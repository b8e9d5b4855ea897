import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InMemoryTenantKeyStore, KeyHierarchy, LocalKeyring, kmsKeyIdResolver } from '@sealpost/crypto';
import { contactFieldsFingerprint } from './request-fingerprint';

describe('request fingerprint of an upsert', () => {
  let dir: string;
  let keys: KeyHierarchy;
  const fields = { email: 'jane.doe@example.com', phone: '+447911123456', name: 'Jane Doe' };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sealpost-fingerprint-'));
    keys = new KeyHierarchy({
      kms: await LocalKeyring.open(path.join(dir, 'keyring.json')),
      kmsKeyIdFor: kmsKeyIdResolver({ template: 'local-{tenant}' }),
      tenantKeys: new InMemoryTenantKeyStore(),
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is keyed per tenant: stable for one tenant, different in another, never an unkeyed hash of the fields', async () => {
    const a = await contactFieldsFingerprint(keys, 't-a', fields);
    expect(await contactFieldsFingerprint(keys, 't-a', { ...fields })).toBe(a);
    expect(await contactFieldsFingerprint(keys, 't-b', fields)).not.toBe(a);
    expect(await contactFieldsFingerprint(keys, 't-a', { ...fields, name: 'Jane Doe ' })).not.toBe(a);
    const mac = a.split('.')[1]!;
    for (const text of [JSON.stringify([fields.email, fields.phone, fields.name]), fields.email, fields.phone]) {
      const digest = createHash('sha256').update(text).digest();
      for (const encoding of ['base64url', 'base64', 'hex'] as const) expect(mac).not.toBe(digest.toString(encoding));
    }
    expect(a).not.toContain('jane');
  });

  it('changes when the index root rotates, so a retry straddling the rotation is refused rather than run twice', async () => {
    const before = await contactFieldsFingerprint(keys, 't-a', fields);
    expect(before.startsWith('1.')).toBe(true);
    await keys.rotateIndexRoot('t-a');
    keys.clear(); // another replica, or this one after its cache window: it sees version 2
    const after = await contactFieldsFingerprint(keys, 't-a', fields);
    expect(after.startsWith('2.')).toBe(true);
    expect(after).not.toBe(before);
  });
});
