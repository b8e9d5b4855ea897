import { createCipheriv, createDecipheriv } from 'node:crypto';
import { DecryptionError } from './errors';
import { assertId, writeLengthPrefixedId } from './ids';
import type { DataKey, TenantKek, WrappedDataKey } from './keys';
import { randomPool } from './random-pool';

/**
 * Wrapped data key format (version 1), 61 bytes:
 *
 *   [0x01][nonce 12][tag 16][ciphertext 32]
 *
 * AES-256-GCM under the tenant KEK with a fresh random nonce;
 * AAD = "sealpost/data-key/v1" 0x00 | u16-len tenant | u16-len contact | u32 kek version | data key id (16 bytes).
 */
const WRAP_VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const WRAPPED_BYTES = 1 + NONCE_BYTES + TAG_BYTES + KEY_BYTES;
const WRAP_LABEL = Buffer.from('sealpost/data-key/v1\u0000', 'utf8');
export const DATA_KEY_ID_BYTES = 16;

/** Where wrapped data keys live: a separate database with short backup retention (crypto-shredding). */
export interface DataKeyStore {
  get(tenantId: string, contactId: string): Promise<WrappedDataKey | undefined>;
  /**
   * Stores `key` unless the contact already has one, and returns the key now stored. Create-if-absent, so
   * two first writes racing for one contact end up on the same key instead of orphaning a record.
   */
  put(tenantId: string, contactId: string, key: WrappedDataKey): Promise<WrappedDataKey>;
  /**
   * Replaces the stored key only if its `dataKeyId` equals `key.dataKeyId` (KEK rotation rewraps the same
   * key). Returns false when the contact has no key or a different one.
   */
  rewrap(tenantId: string, contactId: string, key: WrappedDataKey): Promise<boolean>;
  /** Deletes the contact's key (crypto-shredding). Returns whether one existed. */
  delete(tenantId: string, contactId: string): Promise<boolean>;
}

/** `DataKeyStore` in memory, for tests and as the reference behaviour for the database adapters. */
export class InMemoryDataKeyStore implements DataKeyStore {
  private readonly keys = new Map<string, WrappedDataKey>();

  async get(tenantId: string, contactId: string): Promise<WrappedDataKey | undefined> {
    const key = this.keys.get(slot(tenantId, contactId));
    return key && copy(key);
  }

  async put(tenantId: string, contactId: string, key: WrappedDataKey): Promise<WrappedDataKey> {
    const id = slot(tenantId, contactId);
    const existing = this.keys.get(id);
    if (existing) return copy(existing);
    this.keys.set(id, copy(key));
    return key;
  }

  async rewrap(tenantId: string, contactId: string, key: WrappedDataKey): Promise<boolean> {
    const id = slot(tenantId, contactId);
    if (this.keys.get(id)?.dataKeyId !== key.dataKeyId) return false;
    this.keys.set(id, copy(key));
    return true;
  }

  async delete(tenantId: string, contactId: string): Promise<boolean> {
    return this.keys.delete(slot(tenantId, contactId));
  }

  get size(): number {
    return this.keys.size;
  }
}

/** A fresh random 256-bit data key with a random 128-bit id. */
export function generateDataKey(): DataKey {
  // One draw for id and key: independent CSPRNG bytes either way.
  const bytes = randomPool.fill(Buffer.allocUnsafeSlow(DATA_KEY_ID_BYTES + KEY_BYTES));
  return {
    dataKeyId: bytes.toString('base64url', 0, DATA_KEY_ID_BYTES),
    key: bytes.subarray(DATA_KEY_ID_BYTES),
  };
}

/** Wraps `dataKey` under `kek`, bound to the tenant, the contact, the KEK version and the data key id. */
export function wrapDataKey(kek: TenantKek, contactId: string, dataKey: DataKey): WrappedDataKey {
  const aad = wrapAad(kek.tenantId, contactId, kek.version, dataKey.dataKeyId);
  const wrapped = Buffer.allocUnsafe(WRAPPED_BYTES);
  wrapped[0] = WRAP_VERSION;
  // The fresh nonce goes straight into place.
  const nonce = randomPool.fill(wrapped.subarray(1, 1 + NONCE_BYTES));
  const cipher = createCipheriv('aes-256-gcm', kek.key, nonce);
  cipher.setAAD(aad);
  const body = cipher.update(dataKey.key);
  cipher.final(); // GCM is a stream mode: final() only computes the tag
  cipher.getAuthTag().copy(wrapped, 1 + NONCE_BYTES);
  body.copy(wrapped, 1 + NONCE_BYTES + TAG_BYTES);
  return { dataKeyId: dataKey.dataKeyId, kekVersion: kek.version, wrapped };
}

/**
 * Unwraps a data key. `kek` must be the version named by `wrapped.kekVersion`. Throws `DecryptionError`
 * (part 'data-key') on any alteration or mismatch.
 */
export function unwrapDataKey(kek: TenantKek, contactId: string, wrapped: WrappedDataKey): DataKey {
  const bytes = wrapped.wrapped;
  const blob = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (kek.version !== wrapped.kekVersion || blob.length !== WRAPPED_BYTES || blob[0] !== WRAP_VERSION) {
    throw new DecryptionError('data-key');
  }
  let aad: Buffer;
  try {
    aad = wrapAad(kek.tenantId, contactId, wrapped.kekVersion, wrapped.dataKeyId);
  } catch (error) {
    throw new DecryptionError('data-key', { cause: error });
  }
  let key: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, blob.subarray(1, 1 + NONCE_BYTES));
    decipher.setAuthTag(blob.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES));
    decipher.setAAD(aad);
    key = decipher.update(blob.subarray(1 + NONCE_BYTES + TAG_BYTES));
    decipher.final(); // checks the tag; GCM returns all plaintext from update()
    return { dataKeyId: wrapped.dataKeyId, key };
  } catch (error) {
    key?.fill(0); // an unauthenticated key is not left behind
    throw new DecryptionError('data-key', { cause: error });
  }
}

// Canonical unpadded base64url of exactly 16 bytes: 21 free characters, then one whose low 4 bits are 0.
export const DATA_KEY_ID = /^[A-Za-z0-9_-]{21}[AQgw]$/;

const BASE64URL_VALUE = (() => {
  const values = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < alphabet.length; i += 1) values[alphabet.charCodeAt(i)] = i;
  return values;
})();

/**
 * Decodes a data key id (exactly what `DATA_KEY_ID` accepts) into `target` at `offset`; returns the offset after
 * its 16 bytes. Throws TypeError on anything else. A check and a decode in one pass, in place.
 */
export function writeDataKeyId(target: Buffer, offset: number, dataKeyId: string): number {
  if (typeof dataKeyId !== 'string' || dataKeyId.length !== 22) throw new TypeError('Malformed data key id');
  let bits = 0;
  let pending = 0;
  let at = offset;
  for (let i = 0; i < 22; i += 1) {
    const code = dataKeyId.charCodeAt(i);
    const value = code < 128 ? (BASE64URL_VALUE[code] ?? -1) : -1;
    if (value < 0) throw new TypeError('Malformed data key id');
    pending = ((pending << 6) | value) & 0x3fff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      target[at] = (pending >>> bits) & 0xff;
      at += 1;
    }
  }
  // 22 characters carry 132 bits: 16 bytes and 4 bits that must be zero in the canonical encoding.
  if ((pending & 0xf) !== 0) throw new TypeError('Malformed data key id');
  return at;
}

/** Raw 16-byte form of a data key id; throws TypeError on a malformed id. */
export function dataKeyIdBytes(dataKeyId: string): Buffer {
  if (typeof dataKeyId !== 'string' || !DATA_KEY_ID.test(dataKeyId)) throw new TypeError('Malformed data key id');
  return Buffer.from(dataKeyId, 'base64url');
}

function wrapAad(tenantId: string, contactId: string, kekVersion: number, dataKeyId: string): Buffer {
  assertId('tenantId', tenantId);
  assertId('contactId', contactId);
  if (!Number.isInteger(kekVersion) || kekVersion < 1 || kekVersion > 0xffffffff) {
    throw new TypeError('KEK version must be a positive 32-bit integer');
  }
  const aad = Buffer.allocUnsafe(
    WRAP_LABEL.length + 2 + tenantId.length + 2 + contactId.length + 4 + DATA_KEY_ID_BYTES,
  );
  let offset = WRAP_LABEL.copy(aad, 0);
  offset = writeLengthPrefixedId(aad, tenantId, offset);
  offset = writeLengthPrefixedId(aad, contactId, offset);
  offset = aad.writeUInt32BE(kekVersion, offset);
  writeDataKeyId(aad, offset, dataKeyId);
  return aad;
}

function slot(tenantId: string, contactId: string): string {
  return `${tenantId}\u0000${contactId}`;
}

function copy(key: WrappedDataKey): WrappedDataKey {
  return { dataKeyId: key.dataKeyId, kekVersion: key.kekVersion, wrapped: Uint8Array.from(key.wrapped) };
}
