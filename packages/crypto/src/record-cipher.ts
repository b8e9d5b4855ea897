import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';

/** A 256-bit AES key as bytes or as a KeyObject. */
export type AesKey = Buffer | KeyObject;
import { DATA_KEY_ID_BYTES, writeDataKeyId } from './data-key';
import { DecryptionError } from './errors';
import { assertId, writeLengthPrefixedId } from './ids';
import { randomPool } from './random-pool';

/**
 * Encrypted contact record, format version 1. One AES-256-GCM call over all of a contact's fields:
 *
 *   offset  size  content
 *   0       1     format version (0x01)
 *   1       16    data key id (raw bytes of the base64url id)
 *   17      4     KEK version that wrapped the data key at write time (uint32 BE)
 *   21      1     field count n (1..64)
 *   22      …     n × [name length (1 byte)][name, ASCII [a-z][a-z0-9_]*], names sorted ascending
 *   h       12    nonce (fresh from the CSPRNG on every write, drawn through `randomPool` straight into the
 *                 record; never a counter or derived)
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
  const names = sortedFieldNames(fields);
  const fieldList = encodeFieldList(names);
  // UTF-8 takes at most 3 bytes per UTF-16 code unit: one pass writes the values, no per-field sizing first.
  let plaintextBound = 0;
  for (const name of names) {
    const value = fields[name];
    if (typeof value !== 'string') throw new TypeError('Field values are strings');
    plaintextBound += 4 + 3 * value.length;
  }
  // One output buffer: header, nonce and tag are written in place. The plaintext is written where its ciphertext
  // goes and overwritten by it (no second buffer to zero); every way out that leaves it there zeroes it.
  const headerLength = 1 + DATA_KEY_ID_BYTES + 4 + fieldList.length;
  const tagAt = headerLength + NONCE_BYTES;
  const bodyAt = tagAt + TAG_BYTES;
  const bound = Buffer.allocUnsafe(bodyAt + plaintextBound);
  let sealed = false;
  try {
    let length = 0;
    for (const name of names) {
      const written = writeUtf8(bound, fields[name] as string, bodyAt + length + 4);
      bound.writeUInt32BE(written, bodyAt + length);
      length += 4 + written;
    }
    const record = bound.subarray(0, bodyAt + length);
    writeHeader(record, recordKey.dataKeyId, recordKey.kekVersion, fieldList);
    const nonce = randomPool.fill(record.subarray(headerLength, tagAt));
    const cipher = createCipheriv('aes-256-gcm', recordKey.key, nonce);
    cipher.setAAD(recordAad(binding, record, headerLength));
    const body = cipher.update(record.subarray(bodyAt));
    cipher.final(); // GCM is a stream mode: final() only computes the tag
    cipher.getAuthTag().copy(record, tagAt);
    body.copy(record, bodyAt);
    sealed = true;
    return record;
  } finally {
    // A refused key id or a cipher error leaves plaintext behind.
    if (!sealed) bound.fill(0, bodyAt);
  }
}

/** Reads the clear header (to find the data key). Throws `DecryptionError` when it is malformed. */
export function readRecordHeader(record: Uint8Array): RecordHeader {
  const parsed = parseHeader(asBuffer(record));
  return {
    formatVersion: RECORD_FORMAT_VERSION,
    dataKeyId: parsed.dataKeyId,
    kekVersion: parsed.kekVersion,
    fieldNames: [...parsed.fieldNames],
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
  let plaintext: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, blob.subarray(nonceAt, tagAt));
    decipher.setAuthTag(blob.subarray(tagAt, tagAt + TAG_BYTES));
    decipher.setAAD(recordAad(binding, blob, parsed.headerLength));
    plaintext = decipher.update(blob.subarray(tagAt + TAG_BYTES));
    decipher.final(); // checks the tag; GCM returns all plaintext from update()
  } catch (error) {
    plaintext?.fill(0); // unauthenticated bytes are not left behind
    throw new DecryptionError('record', { cause: error });
  }
  return decodeValues(parsed.fieldNames, plaintext);
}

/** The field names of `fields`, sorted (code-unit order, as `Array.prototype.sort`). Throws TypeError on a bad count. */
function sortedFieldNames(fields: Readonly<Record<string, string>>): string[] {
  const names = Object.keys(fields);
  if (names.length === 0 || names.length > MAX_FIELDS) throw new TypeError(`A record holds 1..${MAX_FIELDS} fields`);
  // Insertion sort in place: lists are short, and sort() allocates more than the rest of a seal together.
  for (let i = 1; i < names.length; i += 1) {
    const name = names[i] as string;
    let j = i - 1;
    while (j >= 0 && (names[j] as string) > name) {
      names[j + 1] = names[j] as string;
      j -= 1;
    }
    names[j + 1] = name;
  }
  return names;
}

// Contacts share a handful of field lists, so each list is validated and encoded once; the last one used is
// compared name by name first (no key string to build on the common path).
const fieldListCache = new Map<string, Buffer>();
let lastFieldList: { readonly names: readonly string[]; readonly encoded: Buffer } | undefined;

/** Writes `value` as UTF-8 at `at` (room for 3 bytes per code unit is there); returns the bytes written. */
function writeUtf8(target: Buffer, value: string, at: number): number {
  // ASCII (most addresses and numbers) byte by byte; anything else through Buffer's encoder, from the start.
  for (let i = 0; i < value.length; i += 1) {
    const code = value.charCodeAt(i);
    if (code >= 0x80) return target.write(value, at, 'utf8');
    target[at + i] = code;
  }
  return value.length;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

/** Encoded field list of sorted `names`: count, then length-prefixed names. Throws TypeError on an invalid list. */
function encodeFieldList(names: string[]): Buffer {
  const last = lastFieldList;
  if (last !== undefined && sameNames(last.names, names)) return last.encoded;
  // With the count check this key cannot collide: a valid list's key holds only [a-z0-9_] and exactly
  // count-1 separators, so another list with the same key and count is that same list.
  const cacheKey = names.join('\u0000');
  let encoded = fieldListCache.get(cacheKey);
  if (encoded === undefined || encoded[0] !== names.length) {
    if (names.length === 0 || names.length > MAX_FIELDS) throw new TypeError(`A record holds 1..${MAX_FIELDS} fields`);
    encoded = Buffer.alloc(1 + names.reduce((sum, name) => sum + 1 + name.length, 0));
    let offset = encoded.writeUInt8(names.length, 0);
    for (const name of names) {
      if (!FIELD_NAME.test(name)) throw new TypeError('Field names are [a-z][a-z0-9_]{0,62}');
      offset = encoded.writeUInt8(name.length, offset);
      offset += encoded.write(name, offset, 'latin1');
    }
    if (fieldListCache.size >= 256) fieldListCache.clear();
    fieldListCache.set(cacheKey, encoded);
  }
  lastFieldList = { names: [...names], encoded };
  return encoded;
}

/** Writes the header (version, data key id, KEK version, field list) at the start of `target`. */
function writeHeader(target: Buffer, dataKeyId: string, kekVersion: number, fieldList: Buffer): void {
  if (!Number.isInteger(kekVersion) || kekVersion < 1 || kekVersion > 0xffffffff) {
    throw new TypeError('KEK version must be a positive 32-bit integer');
  }
  target[0] = RECORD_FORMAT_VERSION;
  writeDataKeyId(target, 1, dataKeyId);
  target.writeUInt32BE(kekVersion, 1 + DATA_KEY_ID_BYTES);
  fieldList.copy(target, 1 + DATA_KEY_ID_BYTES + 4);
}

function parseHeader(blob: Buffer): {
  dataKeyId: string;
  kekVersion: number;
  fieldNames: readonly string[];
  headerLength: number;
} {
  const fixed = 1 + DATA_KEY_ID_BYTES + 4 + 1;
  if (blob.length < fixed || blob[0] !== RECORD_FORMAT_VERSION) throw new DecryptionError('record');
  const dataKeyId = blob.toString('base64url', 1, 1 + DATA_KEY_ID_BYTES);
  const kekVersion = blob.readUInt32BE(1 + DATA_KEY_ID_BYTES);
  // The field list starts with its count byte. The same bytes as the last list seen are that list (every list
  // remembered was valid and canonical), so the common case decodes no names.
  const listAt = fixed - 1;
  const last = lastFieldList;
  if (
    last !== undefined &&
    blob.length >= listAt + last.encoded.length &&
    last.encoded.compare(blob, listAt, listAt + last.encoded.length) === 0
  ) {
    return { dataKeyId, kekVersion, fieldNames: last.names, headerLength: listAt + last.encoded.length };
  }
  const count = blob[listAt] ?? 0;
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
  lastFieldList = { names: fieldNames, encoded: Buffer.from(blob.subarray(listAt, offset)) };
  return { dataKeyId, kekVersion, fieldNames, headerLength: offset };
}

/** AAD of a record whose header is `record[0, headerLength)`. */
function recordAad(binding: RecordBinding, record: Buffer, headerLength: number): Buffer {
  // Order as documented: version | tenant | contact | key ids | field list.
  const aad = Buffer.allocUnsafe(headerLength + 2 + binding.tenantId.length + 2 + binding.contactId.length);
  aad[0] = record[0] ?? 0;
  let offset = writeLengthPrefixedId(aad, binding.tenantId, 1);
  offset = writeLengthPrefixedId(aad, binding.contactId, offset);
  record.copy(aad, offset, 1, headerLength);
  return aad;
}

function decodeValues(names: readonly string[], plaintext: Buffer): Record<string, string> {
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
