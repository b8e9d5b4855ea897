import { createSecretKey, randomBytes } from 'node:crypto';
import {
  DATA_KEY_ID,
  generateDataKey,
  InMemoryDataKeyStore,
  unwrapDataKey,
  wrapDataKey,
  writeDataKeyId,
} from './data-key';
import { DecryptionError } from './errors';
import type { TenantKek, WrappedDataKey } from './keys';

function kek(tenantId = 'tenant-a', version = 1): TenantKek {
  return { tenantId, version, key: createSecretKey(randomBytes(32)) };
}

function expectKeyTampered(unwrap: () => unknown): void {
  let thrown: unknown;
  try {
    unwrap();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(DecryptionError);
  expect(thrown).toMatchObject({ code: 'RECORD_TAMPERED', part: 'data-key' });
}

describe('data keys', () => {
  it('wraps and unwraps a random 256-bit key under the KEK', () => {
    const tenantKek = kek();
    const dataKey = generateDataKey();
    const wrapped = wrapDataKey(tenantKek, 'contact-1', dataKey);
    expect(wrapped.wrapped).toHaveLength(61);
    expect(wrapped.kekVersion).toBe(1);
    expect(Buffer.from(wrapped.wrapped).includes(dataKey.key)).toBe(false);
    const unwrapped = unwrapDataKey(tenantKek, 'contact-1', wrapped);
    expect(unwrapped.dataKeyId).toBe(dataKey.dataKeyId);
    expect(unwrapped.key.equals(dataKey.key)).toBe(true);
  });

  it('gives distinct keys and ids each time', () => {
    const a = generateDataKey();
    const b = generateDataKey();
    expect(a.dataKeyId).not.toBe(b.dataKeyId);
    expect(a.key.equals(b.key)).toBe(false);
    expect(a.key).toHaveLength(32);
  });

  it('fails on a flip of any single byte of the wrapped key', () => {
    const tenantKek = kek();
    const wrapped = wrapDataKey(tenantKek, 'contact-1', generateDataKey());
    for (let i = 0; i < wrapped.wrapped.length; i += 1) {
      const altered = Uint8Array.from(wrapped.wrapped);
      altered[i] = (altered[i] ?? 0) ^ 0x01;
      expectKeyTampered(() => unwrapDataKey(tenantKek, 'contact-1', { ...wrapped, wrapped: altered }));
    }
  });

  it('is bound to tenant, contact, KEK version and data key id', () => {
    const tenantKek = kek('tenant-a', 2);
    const wrapped = wrapDataKey(tenantKek, 'contact-1', generateDataKey());
    expectKeyTampered(() => unwrapDataKey(tenantKek, 'contact-2', wrapped));
    expectKeyTampered(() => unwrapDataKey({ ...tenantKek, tenantId: 'tenant-b' }, 'contact-1', wrapped));
    // Same key bytes presented as another version: the AAD differs.
    expectKeyTampered(() => unwrapDataKey({ ...tenantKek, version: 3 }, 'contact-1', { ...wrapped, kekVersion: 3 }));
    expectKeyTampered(() =>
      unwrapDataKey(tenantKek, 'contact-1', { ...wrapped, dataKeyId: generateDataKey().dataKeyId }),
    );
    expectKeyTampered(() => unwrapDataKey(kek('tenant-a', 2), 'contact-1', wrapped));
  });
});

describe('InMemoryDataKeyStore', () => {
  const sample = (): WrappedDataKey => wrapDataKey(kek(), 'contact-1', generateDataKey());

  it('puts only when absent and returns what is stored', async () => {
    const store = new InMemoryDataKeyStore();
    const first = sample();
    const second = sample();
    expect((await store.put('t', 'c', first)).dataKeyId).toBe(first.dataKeyId);
    expect((await store.put('t', 'c', second)).dataKeyId).toBe(first.dataKeyId);
    expect((await store.get('t', 'c'))?.dataKeyId).toBe(first.dataKeyId);
  });

  it('rewraps only the same data key, and deletes', async () => {
    const store = new InMemoryDataKeyStore();
    const first = sample();
    await store.put('t', 'c', first);
    expect(await store.rewrap('t', 'c', sample())).toBe(false);
    expect(await store.rewrap('t', 'c', { ...first, kekVersion: 2 })).toBe(true);
    expect((await store.get('t', 'c'))?.kekVersion).toBe(2);
    expect(await store.delete('t', 'c')).toBe(true);
    expect(await store.delete('t', 'c')).toBe(false);
    expect(await store.get('t', 'c')).toBeUndefined();
    expect(await store.rewrap('t', 'c', first)).toBe(false);
  });

  it('decodes a data key id in place exactly as base64url, and refuses what DATA_KEY_ID refuses', () => {
    for (let i = 0; i < 500; i += 1) {
      const id = randomBytes(16).toString('base64url');
      const target = Buffer.alloc(20, 0xee);
      expect(writeDataKeyId(target, 2, id)).toBe(18);
      expect(target.subarray(2, 18)).toEqual(Buffer.from(id, 'base64url'));
      expect([target[0], target[1], target[18], target[19]]).toEqual([0xee, 0xee, 0xee, 0xee]);
    }
    const valid = randomBytes(16).toString('base64url');
    for (const bad of [
      valid.slice(0, 21),
      `${valid}A`,
      `${valid.slice(0, 21)}B`, // non-zero trailing bits: another spelling of some id, not the canonical one
      `${valid.slice(0, 20)}+A`,
      `${valid.slice(0, 20)}/A`,
      `${valid.slice(0, 20)}=A`,
      `${valid.slice(0, 20)}éA`,
      '',
      7 as unknown as string,
    ]) {
      expect(DATA_KEY_ID.test(bad)).toBe(false);
      expect(() => writeDataKeyId(Buffer.alloc(16), 0, bad)).toThrow(TypeError);
    }
  });
});
