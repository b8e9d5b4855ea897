import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { blindIndex } from './blind-index';
import { KeyNotFoundError, KmsUnavailableError } from './errors';
import { InMemoryTenantKeyStore, KeyHierarchy, kmsContext, kmsKeyIdResolver } from './key-hierarchy';
import { CountingKms } from './kms/counting-kms';
import type { EncryptionContext, KeyManagementService } from './kms/key-management-service';
import { LocalKeyring } from './kms/local-keyring';
import { normalizeEmail } from './normalize';

/** Stands in for a KMS outage in unit tests; the real outage (sockets closed) is in test/aws-kms.test.ts. */
class SwitchableKms implements KeyManagementService {
  up = true;
  constructor(private readonly inner: KeyManagementService) {}
  async encrypt(keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    if (!this.up) throw new KmsUnavailableError('unreachable');
    return this.inner.encrypt(keyId, plaintext, context);
  }
  async decrypt(keyId: string, blob: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    if (!this.up) throw new KmsUnavailableError('unreachable');
    return this.inner.decrypt(keyId, blob, context);
  }
}

let dir: string;
let keyring: LocalKeyring;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sealpost-hierarchy-'));
  keyring = await LocalKeyring.open(path.join(dir, 'keyring.json'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(cache: { maxAgeMs?: number; maxUses?: number } = {}) {
  let now = 1_000_000;
  const switchable = new SwitchableKms(keyring);
  const kms = new CountingKms(switchable);
  const tenantKeys = new InMemoryTenantKeyStore();
  const fresh = () =>
    new KeyHierarchy({
      kms,
      kmsKeyIdFor: kmsKeyIdResolver({ template: 'alias/sealpost-{tenant}' }),
      tenantKeys,
      cache: { maxAgeMs: cache.maxAgeMs ?? 60_000, maxUses: cache.maxUses ?? 1_000_000, now: () => now },
    });
  return { kms, switchable, tenantKeys, keys: fresh(), fresh, advance: (ms: number) => (now += ms) };
}

describe('kmsKeyIdResolver', () => {
  it('maps tenants through a template, with explicit overrides', () => {
    const resolve = kmsKeyIdResolver({
      template: 'alias/sealpost-{tenant}',
      map: { big: 'arn:aws:kms:eu-west-1:1:key/abc' },
    });
    expect(resolve('acme')).toBe('alias/sealpost-acme');
    expect(resolve('big')).toBe('arn:aws:kms:eu-west-1:1:key/abc');
    expect(() => resolve('jane@example.com')).toThrow(TypeError);
    expect(() => kmsKeyIdResolver({ template: 'alias/one-shared-key' })).toThrow('{tenant}');
    expect(() => kmsKeyIdResolver({ map: {} })('acme')).toThrow(KeyNotFoundError);
  });
});

describe('KeyHierarchy', () => {
  it('creates KEK, index root and suppression key on first use, stored only KMS-wrapped with id-only contexts', async () => {
    const { keys, tenantKeys } = setup();
    const kek = await keys.currentKek('tenant-a');
    const index = await keys.currentIndexKeys('tenant-a');
    const suppression = await keys.suppressionKey('tenant-a');
    expect(kek.version).toBe(1);
    expect(index.keyVersion).toBe(1);
    const stored = tenantKeys.all();
    expect(stored.map((k) => [k.purpose, k.version, k.kmsKeyId])).toEqual([
      ['kek', 1, 'alias/sealpost-tenant-a'],
      ['index', 1, 'alias/sealpost-tenant-a'],
      ['suppression', 1, 'alias/sealpost-tenant-a'],
    ]);
    // The plaintext never reaches the store: each blob opens only through KMS with its own context.
    const kekBlob = stored[0]!.ciphertextBlob;
    expect(Buffer.from(kekBlob).includes(kek.key.export())).toBe(false);
    const unwrapped = await keyring.decrypt('alias/sealpost-tenant-a', kekBlob, {
      tenant: 'tenant-a',
      purpose: 'kek',
      version: '1',
    });
    expect(Buffer.from(unwrapped).equals(kek.key.export())).toBe(true);
    await expect(
      keyring.decrypt('alias/sealpost-tenant-a', kekBlob, { tenant: 'tenant-a', purpose: 'index', version: '1' }),
    ).rejects.toMatchObject({ code: 'KMS_DECRYPT_REFUSED' });
    expect(
      Buffer.from(
        await keyring.decrypt(
          'alias/sealpost-tenant-a',
          stored[2]!.ciphertextBlob,
          kmsContext('tenant-a', 'suppression', 1),
        ),
      ).equals(suppression.key.export()),
    ).toBe(true);
    expect(kmsContext('tenant-a', 'suppression', 1)).toEqual({ tenant: 'tenant-a', purpose: 'suppression' });
  });

  it('gives every tenant its own keys', async () => {
    const { keys } = setup();
    const a = await keys.currentKek('tenant-a');
    const b = await keys.currentKek('tenant-b');
    expect(a.key.export().equals(b.key.export())).toBe(false);
    const email = normalizeEmail('jane@example.com');
    expect(blindIndex(await keys.currentIndexKeys('tenant-a'), 'email', email, 1).value).not.toBe(
      blindIndex(await keys.currentIndexKeys('tenant-b'), 'email', email, 1).value,
    );
  });

  it('another replica unwraps the same keys through KMS', async () => {
    const { keys, fresh, kms } = setup();
    const kek = await keys.currentKek('tenant-a');
    const index = await keys.currentIndexKeys('tenant-a');
    const before = kms.decrypts;
    const replica = fresh();
    expect((await replica.currentKek('tenant-a')).key.export().equals(kek.key.export())).toBe(true);
    const email = normalizeEmail('jane@example.com');
    expect(blindIndex(await replica.currentIndexKeys('tenant-a'), 'email', email, 1)).toEqual(
      blindIndex(index, 'email', email, 1),
    );
    expect(kms.decrypts - before).toBe(2);
  });

  it('calls KMS per key and cache window, not per operation', async () => {
    const { keys, kms, fresh } = setup({ maxAgeMs: 60_000, maxUses: 250 });
    await keys.currentKek('tenant-a'); // creates (1 KMS encrypt)
    const replica = fresh();
    const calls = kms.calls;
    for (let i = 0; i < 1_000; i += 1) await replica.currentKek('tenant-a');
    // 1,000 uses with maxUses 250: exactly 4 unwraps.
    expect(kms.calls - calls).toBe(4);
    expect(replica.stats()).toMatchObject({ loads: 4, misses: 4, hits: 996, expiredByUses: 3 });
  });

  it('by default keeps a plaintext key 5 minutes or 1,000,000 uses, whichever comes first, and forgets all on clear()', async () => {
    let now = 0;
    const kms = new CountingKms(keyring);
    const tenantKeys = new InMemoryTenantKeyStore();
    const options = { kms, kmsKeyIdFor: kmsKeyIdResolver({ template: 'local-{tenant}' }), tenantKeys };
    await new KeyHierarchy(options).currentKek('tenant-a'); // created by another replica
    const keys = new KeyHierarchy({ ...options, cache: { now: () => now } });
    await keys.currentKek('tenant-a');
    const calls = kms.calls;
    now += 5 * 60_000 - 1;
    expect(keys.cachedCurrentKek('tenant-a')).toBeDefined();
    now += 1;
    expect(keys.cachedCurrentKek('tenant-a')).toBeUndefined();
    await keys.currentKek('tenant-a');
    expect(kms.calls - calls).toBe(1);

    let uses = 1;
    while (keys.cachedCurrentKek('tenant-a') !== undefined && uses <= 1_000_001) uses += 1;
    expect(uses).toBe(1_000_000);

    await keys.currentKek('tenant-a');
    keys.clear();
    expect(keys.cachedCurrentKek('tenant-a')).toBeUndefined();
    expect(keys.stats().size).toBe(0);
  });

  it('rotates the KEK and index root, keeping old versions readable', async () => {
    const { keys, fresh } = setup();
    const v1 = await keys.currentKek('tenant-a');
    const index1 = await keys.currentIndexKeys('tenant-a');
    expect(await keys.rotateKek('tenant-a')).toBe(2);
    const v2 = await keys.currentKek('tenant-a');
    expect(v2.version).toBe(2);
    expect(v2.key.export().equals(v1.key.export())).toBe(false);
    expect((await keys.kek('tenant-a', 1)).key.export().equals(v1.key.export())).toBe(true);
    expect(await keys.rotateIndexRoot('tenant-a')).toBe(2);
    const index2 = await keys.currentIndexKeys('tenant-a');
    expect(index2.keyVersion).toBe(2);
    const email = normalizeEmail('jane@example.com');
    expect(blindIndex(index2, 'email', email, 1).value).not.toBe(blindIndex(index1, 'email', email, 1).value);
    // A replica that starts later sees the new current versions.
    const replica = fresh();
    expect((await replica.currentKek('tenant-a')).version).toBe(2);
    expect((await replica.indexKeys('tenant-a', 1)).keyVersion).toBe(1);
    await expect(replica.kek('tenant-a', 9)).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('a warm replica picks up a rotation made elsewhere when its cache window ends, not before', async () => {
    const { keys, fresh, advance } = setup({ maxAgeMs: 60_000 });
    expect((await keys.currentKek('tenant-a')).version).toBe(1);
    expect((await keys.currentIndexKeys('tenant-a')).keyVersion).toBe(1);
    const other = fresh();
    await other.rotateKek('tenant-a');
    await other.rotateIndexRoot('tenant-a');
    advance(59_999);
    expect((await keys.currentKek('tenant-a')).version).toBe(1);
    expect((await keys.currentIndexKeys('tenant-a')).keyVersion).toBe(1);
    advance(1);
    expect((await keys.currentKek('tenant-a')).version).toBe(2);
    expect((await keys.currentIndexKeys('tenant-a')).keyVersion).toBe(2);
  });

  it('survives a KMS outage until the cache expires, then fails closed with KMS_UNAVAILABLE', async () => {
    const { keys, switchable, advance } = setup({ maxAgeMs: 30_000 });
    const kek = await keys.currentKek('tenant-a');
    await keys.currentIndexKeys('tenant-a');
    switchable.up = false;
    advance(29_999);
    expect((await keys.kek('tenant-a', 1)).key.export().equals(kek.key.export())).toBe(true);
    expect((await keys.currentIndexKeys('tenant-a')).keyVersion).toBe(1);
    advance(1);
    await expect(keys.kek('tenant-a', 1)).rejects.toMatchObject({ code: 'KMS_UNAVAILABLE', reason: 'unreachable' });
    await expect(keys.currentIndexKeys('tenant-a')).rejects.toBeInstanceOf(KmsUnavailableError);
    // New tenants cannot be provisioned either.
    await expect(keys.currentKek('tenant-new')).rejects.toBeInstanceOf(KmsUnavailableError);
    switchable.up = true;
    expect((await keys.kek('tenant-a', 1)).key.export().equals(kek.key.export())).toBe(true);
  });

  it('converges when two replicas create the first KEK at once', async () => {
    const { fresh } = setup();
    const [a, b] = await Promise.all([fresh().currentKek('tenant-a'), fresh().currentKek('tenant-a')]);
    expect(a.key.export().equals(b.key.export())).toBe(true);
  });

  it('answers cached KEK lookups synchronously within the same age and use bounds, and never calls KMS for them', async () => {
    const { keys, kms, advance } = setup({ maxAgeMs: 30_000, maxUses: 4 });
    expect(keys.cachedCurrentKek('tenant-a')).toBeUndefined(); // nothing yet: the caller awaits currentKek
    const kek = await keys.currentKek('tenant-a'); // creates it and uses it once
    const calls = kms.calls;
    expect(keys.cachedCurrentKek('tenant-a')).toBe(kek);
    expect(keys.cachedKek('tenant-a', 1)).toBe(kek);
    expect(keys.cachedCurrentKek('tenant-a')).toBe(kek);
    // Four uses spent: a synchronous lookup refuses rather than stretch the bound; the async one unwraps anew.
    expect(keys.cachedCurrentKek('tenant-a')).toBeUndefined();
    expect(keys.cachedKek('tenant-a', 1)).toBeUndefined();
    expect(kms.calls).toBe(calls);
    const reloaded = await keys.kek('tenant-a', 1);
    expect(kms.calls).toBe(calls + 1);
    expect(keys.cachedKek('tenant-a', 1)).toBe(reloaded);
    advance(30_000);
    expect(keys.cachedKek('tenant-a', 1)).toBeUndefined();
    expect(keys.cachedCurrentKek('tenant-a')).toBeUndefined();
    expect(keys.cachedKek('tenant-a', 2)).toBeUndefined(); // never created
    expect(kms.calls).toBe(calls + 1);
    expect(keys.stats()).toMatchObject({ hits: 5, expiredByUses: 1 });
  });
});
