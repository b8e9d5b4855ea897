import { createHmac, randomBytes } from 'node:crypto';
import {
  BLIND_INDEX_HKDF_SALT,
  blindIndex,
  computeBlindIndexes,
  deriveBlindIndexKeys,
  suppressionHash,
} from './blind-index';
import { createSecretKey } from 'node:crypto';
import { NORM_VERSION, normalizeContactFields, normalizeEmail, type NormalizedEmail } from './normalize';

/** RFC 5869 HKDF written out with plain HMAC, independent of node's hkdfSync. */
function referenceHkdf(ikm: Buffer, salt: Buffer, info: string, length: number): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; blocks.length * 32 < length; i += 1) {
    previous = createHmac('sha256', prk).update(previous).update(info, 'utf8').update(Buffer.of(i)).digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

describe('blind indexes', () => {
  const email = normalizeEmail('Jane@Example.com');

  it('matches HMAC-SHA-256 under HKDF(root, salt, "sealpost/blind-index/v1/<kind>")', () => {
    const root = randomBytes(32);
    const keys = deriveBlindIndexKeys('tenant-a', 1, root);
    const emailKey = referenceHkdf(
      root,
      Buffer.from('sealpost/blind-index/salt/v1'),
      'sealpost/blind-index/v1/email',
      32,
    );
    const phoneKey = referenceHkdf(root, BLIND_INDEX_HKDF_SALT, 'sealpost/blind-index/v1/phone', 32);
    expect(blindIndex(keys, 'email', email, NORM_VERSION)).toEqual({
      fieldKind: 'email',
      keyVersion: 1,
      normVersion: NORM_VERSION,
      value: createHmac('sha256', emailKey).update('jane@example.com').digest('base64url'),
    });
    const phone = normalizeContactFields({ phone: '+447911123456' }).phone!;
    expect(blindIndex(keys, 'phone', phone, NORM_VERSION).value).toBe(
      createHmac('sha256', phoneKey).update('+447911123456').digest('base64url'),
    );
  });

  it('gives the same email different indexes in two tenants', () => {
    const a = deriveBlindIndexKeys('tenant-a', 1, randomBytes(32));
    const b = deriveBlindIndexKeys('tenant-b', 1, randomBytes(32));
    expect(blindIndex(a, 'email', email, 1).value).not.toBe(blindIndex(b, 'email', email, 1).value);
  });

  it('is deterministic per tenant and key version, and separates field kinds and versions', () => {
    const root = randomBytes(32);
    const v1 = deriveBlindIndexKeys('tenant-a', 1, root);
    const again = deriveBlindIndexKeys('tenant-a', 1, root);
    const v2 = deriveBlindIndexKeys('tenant-a', 2, randomBytes(32));
    expect(blindIndex(v1, 'email', email, 1)).toEqual(blindIndex(again, 'email', email, 1));
    expect(blindIndex(v1, 'email', email, 1).value).not.toBe(blindIndex(v2, 'email', email, 1).value);
    const same = 'same-string' as NormalizedEmail;
    expect(blindIndex(v1, 'email', same, 1).value).not.toBe(blindIndex(v1, 'phone', same, 1).value);
  });

  it('computes one index per normalised email and phone, each carrying its versions', () => {
    const keys = deriveBlindIndexKeys('tenant-a', 7, randomBytes(32));
    const fields = normalizeContactFields({ email: 'jane@example.com', phone: '+447911123456' });
    const indexes = computeBlindIndexes(keys, fields);
    expect(indexes.map((i) => [i.fieldKind, i.keyVersion, i.normVersion])).toEqual([
      ['email', 7, NORM_VERSION],
      ['phone', 7, NORM_VERSION],
    ]);
    for (const index of indexes) expect(index.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(computeBlindIndexes(keys, normalizeContactFields({ phone: '+447911123456' }))).toHaveLength(1);
  });

  it('makes suppression hashes under the suppression key, separate from blind indexes', () => {
    const key = { tenantId: 'tenant-a', key: createSecretKey(randomBytes(32)) };
    const other = { tenantId: 'tenant-b', key: createSecretKey(randomBytes(32)) };
    const hash = suppressionHash(key, 'email', email, 1);
    expect(hash).toEqual(suppressionHash(key, 'email', email, 1));
    expect(hash.value).not.toBe(suppressionHash(other, 'email', email, 1).value);
    expect(hash.value).not.toBe(suppressionHash(key, 'phone', email, 1).value);
    expect(hash.value).toBe(
      createHmac('sha256', key.key).update('sealpost/suppression/v1/email\u0000jane@example.com').digest('base64url'),
    );
  });
});
