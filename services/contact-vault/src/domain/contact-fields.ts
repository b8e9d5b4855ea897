import {
  InvalidFieldError,
  NORM_VERSION,
  computeBlindIndexes,
  normalizeContactFields,
  type BlindIndex,
  type BlindIndexKeys,
  type NormalizationPolicy,
} from '@sealpost/crypto';
import type { NormalizedEmail, NormalizedPhone } from '@sealpost/crypto';
import { invalidField } from './errors';

/** Field names a contact can hold; each one is encrypted, only email and phone are blind-indexed. */
export type ContactFieldName = 'email' | 'phone' | 'name';
export const CONTACT_FIELD_NAMES: readonly ContactFieldName[] = ['email', 'phone', 'name'];

/** Longest display name accepted, in characters (code points). */
export const MAX_NAME_LENGTH = 200;
/** Raw inputs longer than this are refused before any parsing (cheap guard against huge strings). */
export const MAX_RAW_FIELD_BYTES = 1024;

/** A contact's fields after validation and normalisation: what is encrypted and compared. */
export interface ContactFields {
  readonly email?: NormalizedEmail;
  readonly phone?: NormalizedPhone;
  readonly name?: string;
}

/** Fields as they arrive (proto3 strings: empty means absent). */
export interface RawContactFields {
  readonly email?: string | null;
  readonly phone?: string | null;
  readonly name?: string | null;
}

// Control characters, and separators that only disguise text (bidi overrides), have no place in a display name.
const NAME_FORBIDDEN = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function present(value: string | null | undefined): value is string {
  return typeof value === 'string' && value !== '';
}

/**
 * Validates and normalises a contact's fields: email lower-cased with a punycode domain, phone to E.164, name
 * trimmed and NFC. Needs an email or a phone. Throws VaultError INVALID_ARGUMENT naming the field, never the value.
 */
export function normalizeFields(raw: RawContactFields, policy: NormalizationPolicy): ContactFields {
  if (typeof raw !== 'object' || raw === null) throw invalidField('fields', 'are required');
  for (const field of CONTACT_FIELD_NAMES) {
    const value = raw[field];
    if (value !== undefined && value !== null && typeof value !== 'string') throw invalidField(field, 'must be text');
    if (present(value) && Buffer.byteLength(value, 'utf8') > MAX_RAW_FIELD_BYTES) {
      throw invalidField(field, `is longer than ${MAX_RAW_FIELD_BYTES} bytes`);
    }
  }
  if (!present(raw.email) && !present(raw.phone)) throw invalidField('fields', 'need an email or a phone');
  let indexed;
  try {
    indexed = normalizeContactFields(
      { email: present(raw.email) ? raw.email : null, phone: present(raw.phone) ? raw.phone : null },
      policy,
    );
  } catch (err) {
    if (err instanceof InvalidFieldError) throw invalidField(err.field, err.reason, err);
    throw err;
  }
  const out: { email?: NormalizedEmail; phone?: NormalizedPhone; name?: string } = {};
  if (indexed.email !== undefined) out.email = indexed.email;
  if (indexed.phone !== undefined) out.phone = indexed.phone;
  if (present(raw.name)) {
    const name = raw.name.normalize('NFC').trim();
    if (NAME_FORBIDDEN.test(name)) throw invalidField('name', 'has control characters');
    if ([...name].length > MAX_NAME_LENGTH) throw invalidField('name', `is longer than ${MAX_NAME_LENGTH} characters`);
    if (name !== '') out.name = name;
  }
  return out;
}

/** The fields as a record for `ContactCipher.seal` (absent fields left out). */
export function toSealable(fields: ContactFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of CONTACT_FIELD_NAMES) {
    const value = fields[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Fields from a decrypted record (values were normalised before they were sealed). */
export function fromOpened(opened: Readonly<Record<string, string>>): ContactFields {
  const out: { email?: NormalizedEmail; phone?: NormalizedPhone; name?: string } = {};
  if (opened['email'] !== undefined) out.email = opened['email'] as NormalizedEmail;
  if (opened['phone'] !== undefined) out.phone = opened['phone'] as NormalizedPhone;
  if (opened['name'] !== undefined) out.name = opened['name'];
  return out;
}

// Sorted once: an import asks for every row's field kinds.
const SORTED_FIELD_NAMES: readonly ContactFieldName[] = [...CONTACT_FIELD_NAMES].sort();

/** Names of the fields present, sorted: what events and documents may say about a contact. */
export function fieldKindsOf(fields: ContactFields): ContactFieldName[] {
  return SORTED_FIELD_NAMES.filter((name) => fields[name] !== undefined);
}

/** An upsert merges: fields the request leaves out keep their stored values. */
export function mergeFields(stored: ContactFields, incoming: ContactFields): ContactFields {
  return { ...stored, ...incoming };
}

export function sameFields(a: ContactFields, b: ContactFields): boolean {
  return CONTACT_FIELD_NAMES.every((name) => a[name] === b[name]);
}

/** Blind indexes of the indexed fields under every given index version and the current normalisation rules. */
export function indexesOf(keys: readonly BlindIndexKeys[], fields: ContactFields): BlindIndex[] {
  return keys.flatMap((k) =>
    computeBlindIndexes(k, {
      ...(fields.email !== undefined ? { email: fields.email } : {}),
      ...(fields.phone !== undefined ? { phone: fields.phone } : {}),
      normVersion: NORM_VERSION,
    }),
  );
}
