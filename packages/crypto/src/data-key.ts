import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptionError } from './errors';
import { assertId, writeLengthPrefixedId } from './ids';
import type { DataKey, TenantKek, WrappedDataKey } from './keys';

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
  // One RNG call for id and key: independent bytes either way, and each call has a fixed cost.
  const bytes = randomBytes(DATA_KEY_ID_BYTES + KEY_BYTES);
  return {
    dataKeyId: bytes.toString('base64url', 0, DATA_KEY_ID_BYTES),
    key: bytes.subarray(DATA_KEY_ID_BYTES),
  };
}

/** Wraps `dataKey` under `kek`, bound to the tenant, the contact, the KEK version and the data key id. */
export function wrapDataKey(kek: TenantKek, contactId: string, dataKey: DataKey): WrappedDataKey {
  const aad = wrapAad(kek.tenantId, contactId, kek.version, dataKey.dataKeyId);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek.key, nonce);
  cipher.setAAD(aad);
  const body = cipher.update(dataKey.key);
  cipher.final(); // GCM is a stream mode: final() only computes the tag
  const wrapped = Buffer.allocUnsafe(WRAPPED_BYTES);
  wrapped[0] = WRAP_VERSION;
  nonce.copy(wrapped, 1);
  cipher.getAuthTag().copy(wrapped, 1 + NONCE_BYTES);
  body.copy(wrapped, 1 + NONCE_BYTES + TAG_BYTES);
  return { dataKeyId: dataKey.dataKeyId, kekVersion: kek.version, wrapped };
}

/**
 * Unwraps a data key. `kek` must be the version named by `wrapped.kekVersion`. Throws `DecryptionError`
 * (part 'data-key') on any alteration or mismatch.
 */
export function unwrapDataKey(kek: TenantKek, contactId: string, wrapped: WrappedDataKey): DataKey {
  const blob = Buffer.from(wrapped.wrapped.buffer, wrapped.wrapped.byteOffset, wrapped.wrapped.byteLength);
  if (kek.version !== wrapped.kekVersion || blob.length !== WRAPPED_BYTES || blob[0] !== WRAP_VERSION) {
    throw new DecryptionError('data-key');
  }
  let aad: Buffer;
  try {
    aad = wrapAad(kek.tenantId, contactId, wrapped.kekVersion, wrapped.dataKeyId);
  } catch (error) {
    throw new DecryptionError('data-key', { cause: error });
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, blob.subarray(1, 1 + NONCE_BYTES));
    decipher.setAuthTag(blob.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES));
    decipher.setAAD(aad);
    const key = Buffer.concat([decipher.update(blob.subarray(1 + NONCE_BYTES + TAG_BYTES)), decipher.final()]);
    return { dataKeyId: wrapped.dataKeyId, key };
  } catch (error) {
    throw new DecryptionError('data-key', { cause: error });
  }
}

// Canonical unpadded base64url of exactly 16 bytes: 21 free characters, then one whose low 4 bits are 0.
export const DATA_KEY_ID = /^[A-Za-z0-9_-]{21}[AQgw]$/;

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
  if (!DATA_KEY_ID.test(dataKeyId)) throw new TypeError('Malformed data key id');
  aad.write(dataKeyId, offset, DATA_KEY_ID_BYTES, 'base64url');
  return aad;
}

function slot(tenantId: string, contactId: string): string {
  return `${tenantId}\u0000${contactId}`;
}

function copy(key: WrappedDataKey): WrappedDataKey {
  return { dataKeyId: key.dataKeyId, kekVersion: key.kekVersion, wrapped: Uint8Array.from(key.wrapped) };
}
