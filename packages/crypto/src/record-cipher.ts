import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';

/** A 256-bit AES key as bytes or as a KeyObject. */
export type AesKey = Buffer | KeyObject;
import { DATA_KEY_ID, DATA_KEY_ID_BYTES } from './data-key';
import { DecryptionError } from './errors';
import { assertId, writeLengthPrefixedId } from './ids';

/**
 * Encrypted contact record, format version 1. One AES-256-GCM call over all of a contact's fields:
 *
 *   offset  size  content
 *   0       1     format version (0x01)
 *   1       16    data key id (raw bytes of the base64url id)
 *   17      4     KEK version that wrapped the data key at write time (uint32 BE)
 *   21      1     field count n (1..64)
 *   22      …     n × [name length (1 byte)][name, ASCII [a-z][a-z0-9_]*], names sorted ascending
 *   h       12    nonce (fresh from crypto.randomBytes on every write; never a counter or derived)
 *   h+12    16    GCM tag
 *   h+28    …     ciphertext of n × [value length (uint32 BE)][value, UTF-8], in header name order
 *
 * AAD = format version | u16-len tenant id | u16-len contact id | data key id | KEK version | field list
 * (count and names), so a record moved to another tenant or contact, relabelled, or paired with another
 * key fails authentication. Tenant and contact ids come from where the record is stored, not from it.
 */
export const RECORD_FORMAT_VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_FIELDS = 64;
const FIELD_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Where a record belongs; bound into its AAD. */
export interface RecordBinding {
  tenantId: string;
  contactId: string;
}

/** The plaintext key and ids a record is sealed with. */
export interface RecordKey {
  dataKeyId: string;
  /** The KEK version wrapping the data key now; recorded in the header and the AAD. */
  kekVersion: number;
  key: AesKey;
}

/** The clear part of a record's header (ids and field names only). */
export interface RecordHeader {
  formatVersion: number;
  dataKeyId: string;
  kekVersion: number;
  fieldNames: string[];
}

/** Encrypts all `fields` of one contact in one AES-256-GCM call. Throws TypeError on invalid names or ids. */
export function sealRecord(
  binding: RecordBinding,
  recordKey: RecordKey,
  fields: Readonly<Record<string, string>>,
): Buffer {
  assertId('tenantId', binding.tenantId);
  assertId('contactId', binding.contactId);
  const names = Object.keys(fields).sort();
  const fieldList = encodeFieldList(names);
  const values: string[] = [];
  const lengths: number[] = [];
  let plaintextLength = 0;
  for (const name of names) {
    const value = fields[name];
    if (typeof value !== 'string') throw new TypeError('Field values are strings');
    const length = Buffer.byteLength(value, 'utf8');
    values.push(value);
    lengths.push(length);
    plaintextLength += 4 + length;
  }
  // Values are written straight into one buffer (no per-field copies left behind to zero).
  const plaintext = Buffer.allocUnsafe(plaintextLength);
  let offset = 0;
  for (let i = 0; i < values.length; i += 1) {
    offset = plaintext.writeUInt32BE(lengths[i] ?? 0, offset);
    offset += plaintext.write(values[i] ?? '', offset, 'utf8');
  }

  const header = encodeHeader(recordKey.dataKeyId, recordKey.kekVersion, fieldList);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', recordKey.key, nonce);
  cipher.setAAD(recordAad(binding, header));
  const body = cipher.update(plaintext);
  cipher.final(); // GCM is a stream mode: final() only computes the tag
  plaintext.fill(0);
  const record = Buffer.allocUnsafe(header.length + NONCE_BYTES + TAG_BYTES + body.length);
  offset = header.copy(record, 0);
  offset += nonce.copy(record, offset);
  offset += cipher.getAuthTag().copy(record, offset);
  body.copy(record, offset);
  return record;
}

/** Reads the clear header (to find the data key). Throws `DecryptionError` when it is malformed. */
export function readRecordHeader(record: Uint8Array): RecordHeader {
  const parsed = parseHeader(asBuffer(record));
  return {
    formatVersion: RECORD_FORMAT_VERSION,
    dataKeyId: parsed.dataKeyId,
    kekVersion: parsed.kekVersion,
    fieldNames: parsed.fieldNames,
  };
}

/**
 * Decrypts a record sealed by `sealRecord` for `binding` with the data key `key`. Any change to any byte,
 * or a different tenant, contact or key, throws `DecryptionError` (RECORD_TAMPERED) without details.
 */
export function openRecord(
  binding: RecordBinding,
  key: { dataKeyId: string; key: AesKey },
  record: Uint8Array,
): Record<string, string> {
  assertId('tenantId', binding.tenantId);
  assertId('contactId', binding.contactId);
  const blob = asBuffer(record);
  const parsed = parseHeader(blob);
  if (parsed.dataKeyId !== key.dataKeyId || blob.length < parsed.headerLength + NONCE_BYTES + TAG_BYTES) {
    throw new DecryptionError('record');
  }
  const nonceAt = parsed.headerLength;
  const tagAt = nonceAt + NONCE_BYTES;
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, blob.subarray(nonceAt, tagAt));
    decipher.setAuthTag(blob.subarray(tagAt, tagAt + TAG_BYTES));
    decipher.setAAD(recordAad(binding, blob.subarray(0, parsed.headerLength)));
    plaintext = Buffer.concat([decipher.update(blob.subarray(tagAt + TAG_BYTES)), decipher.final()]);
  } catch (error) {
    throw new DecryptionError('record', { cause: error });
  }
  return decodeValues(parsed.fieldNames, plaintext);
}

// Contacts share a handful of field lists, so each list is validated and encoded once.
const fieldListCache = new Map<string, Buffer>();

/** Encoded field list: count, then length-prefixed names. Throws TypeError on an invalid list. */
function encodeFieldList(names: string[]): Buffer {
  // With the count check this key cannot collide: a valid list's key holds only [a-z0-9_] and exactly
  // count-1 separators, so another list with the same key and count is that same list.
  const cacheKey = names.join('\u0000');
  const cached = fieldListCache.get(cacheKey);
  if (cached && cached[0] === names.length) return cached;
  if (names.length === 0 || names.length > MAX_FIELDS) throw new TypeError(`A record holds 1..${MAX_FIELDS} fields`);
  const encoded = Buffer.alloc(1 + names.reduce((sum, name) => sum + 1 + name.length, 0));
  let offset = encoded.writeUInt8(names.length, 0);
  for (const name of names) {
    if (!FIELD_NAME.test(name)) throw new TypeError('Field names are [a-z][a-z0-9_]{0,62}');
    offset = encoded.writeUInt8(name.length, offset);
    offset += encoded.write(name, offset, 'latin1');
  }
  if (fieldListCache.size >= 256) fieldListCache.clear();
  fieldListCache.set(cacheKey, encoded);
  return encoded;
}

function encodeHeader(dataKeyId: string, kekVersion: number, fieldList: Buffer): Buffer {
  if (!Number.isInteger(kekVersion) || kekVersion < 1 || kekVersion > 0xffffffff) {
    throw new TypeError('KEK version must be a positive 32-bit integer');
  }
  const header = Buffer.allocUnsafe(1 + DATA_KEY_ID_BYTES + 4 + fieldList.length);
  header[0] = RECORD_FORMAT_VERSION;
  if (!DATA_KEY_ID.test(dataKeyId)) throw new TypeError('Malformed data key id');
  // base64url decodes straight into the header: no intermediate buffer.
  header.write(dataKeyId, 1, DATA_KEY_ID_BYTES, 'base64url');
  header.writeUInt32BE(kekVersion, 1 + DATA_KEY_ID_BYTES);
  fieldList.copy(header, 1 + DATA_KEY_ID_BYTES + 4);
  return header;
}

function parseHeader(blob: Buffer): {
  dataKeyId: string;
  kekVersion: number;
  fieldNames: string[];
  headerLength: number;
} {
  const fixed = 1 + DATA_KEY_ID_BYTES + 4 + 1;
  if (blob.length < fixed || blob[0] !== RECORD_FORMAT_VERSION) throw new DecryptionError('record');
  const dataKeyId = blob.subarray(1, 1 + DATA_KEY_ID_BYTES).toString('base64url');
  const kekVersion = blob.readUInt32BE(1 + DATA_KEY_ID_BYTES);
  const count = blob[fixed - 1] ?? 0;
  if (count < 1 || count > MAX_FIELDS) throw new DecryptionError('record');
  const fieldNames: string[] = [];
  let offset = fixed;
  for (let i = 0; i < count; i += 1) {
    const length = blob[offset];
    if (length === undefined || offset + 1 + length > blob.length) throw new DecryptionError('record');
    const name = blob.toString('latin1', offset + 1, offset + 1 + length);
    // Names must be valid and strictly ascending, so one field list has exactly one encoding.
    const previous = fieldNames[fieldNames.length - 1];
    if (!FIELD_NAME.test(name) || (previous !== undefined && previous >= name)) throw new DecryptionError('record');
    fieldNames.push(name);
    offset += 1 + length;
  }
  return { dataKeyId, kekVersion, fieldNames, headerLength: offset };
}

function recordAad(binding: RecordBinding, header: Buffer): Buffer {
  // Order as documented: version | tenant | contact | key ids | field list.
  const aad = Buffer.allocUnsafe(header.length + 2 + binding.tenantId.length + 2 + binding.contactId.length);
  aad[0] = header[0] ?? 0;
  let offset = writeLengthPrefixedId(aad, binding.tenantId, 1);
  offset = writeLengthPrefixedId(aad, binding.contactId, offset);
  header.copy(aad, offset, 1);
  return aad;
}

function decodeValues(names: string[], plaintext: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let offset = 0;
  try {
    for (const name of names) {
      if (offset + 4 > plaintext.length) throw new DecryptionError('record');
      const length = plaintext.readUInt32BE(offset);
      offset += 4;
      if (offset + length > plaintext.length) throw new DecryptionError('record');
      fields[name] = plaintext.toString('utf8', offset, offset + length);
      offset += length;
    }
    if (offset !== plaintext.length) throw new DecryptionError('record');
    return fields;
  } finally {
    plaintext.fill(0);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
