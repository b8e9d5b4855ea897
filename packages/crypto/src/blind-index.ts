import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { NormalizedContactFields, NormalizedEmail, NormalizedPhone } from './normalize';

/**
 * Blind indexes: HMAC-SHA-256 of a normalised value under a per-tenant, per-field-kind key.
 *
 *   key(fieldKind) = HKDF-SHA-256(ikm = tenant index root (32 bytes, version v),
 *                                 salt = UTF-8 "sealpost/blind-index/salt/v1",
 *                                 info = UTF-8 "sealpost/blind-index/v1/<fieldKind>", L = 32)
 *   value         = base64url(HMAC-SHA-256(key(fieldKind), UTF-8 normalised value))   (43 characters)
 *
 * The salt is a fixed public constant: the root is already uniformly random, so the salt only separates
 * this use of HKDF from any other. Tenants are separated by their own roots.
 */
export const BLIND_INDEX_HKDF_SALT = Buffer.from('sealpost/blind-index/salt/v1', 'utf8');

/** Field kinds that get a blind index. */
export type BlindIndexFieldKind = 'email' | 'phone';
export const BLIND_INDEX_FIELD_KINDS: readonly BlindIndexFieldKind[] = ['email', 'phone'];

/** HKDF info string for one field kind. */
export function blindIndexInfo(fieldKind: BlindIndexFieldKind): string {
  return `sealpost/blind-index/v1/${fieldKind}`;
}

/** One stored index value, with everything needed to know whether it is current. */
export interface BlindIndex {
  fieldKind: BlindIndexFieldKind;
  /** Version of the tenant index root the key was derived from. */
  keyVersion: number;
  /** Version of the normalisation rules applied to the value (`NORM_VERSION`). */
  normVersion: number;
  /** base64url HMAC-SHA-256. */
  value: string;
}

/** The per-field-kind HMAC keys of one tenant index-root version (derived once, held only in memory). */
export interface BlindIndexKeys {
  readonly tenantId: string;
  readonly keyVersion: number;
  readonly keys: Readonly<Record<BlindIndexFieldKind, KeyObject>>;
}

/** Derives the per-field-kind keys from a 32-byte index root. */
export function deriveBlindIndexKeys(tenantId: string, keyVersion: number, root: Uint8Array): BlindIndexKeys {
  if (root.length !== 32) throw new RangeError('Blind-index root must be 32 bytes');
  const derive = (fieldKind: BlindIndexFieldKind): KeyObject =>
    createSecretKey(Buffer.from(hkdfSync('sha256', root, BLIND_INDEX_HKDF_SALT, blindIndexInfo(fieldKind), 32)));
  return Object.freeze({
    tenantId,
    keyVersion,
    keys: Object.freeze({ email: derive('email'), phone: derive('phone') }),
  });
}

/** Computes one blind index of an already-normalised value. */
export function blindIndex(
  keys: BlindIndexKeys,
  fieldKind: BlindIndexFieldKind,
  value: NormalizedEmail | NormalizedPhone,
  normVersion: number,
): BlindIndex {
  const mac = createHmac('sha256', keys.keys[fieldKind]).update(value, 'utf8').digest('base64url');
  return { fieldKind, keyVersion: keys.keyVersion, normVersion, value: mac };
}

/** Blind indexes for the email and phone present in `fields` (output of `normalizeContactFields`). */
export function computeBlindIndexes(keys: BlindIndexKeys, fields: NormalizedContactFields): BlindIndex[] {
  const out: BlindIndex[] = [];
  if (fields.email !== undefined) out.push(blindIndex(keys, 'email', fields.email, fields.normVersion));
  if (fields.phone !== undefined) out.push(blindIndex(keys, 'phone', fields.phone, fields.normVersion));
  return out;
}

/** A tenant's suppression key (never rotated), held only in memory. */
export interface SuppressionKey {
  readonly tenantId: string;
  readonly key: KeyObject;
}

/** A suppression tombstone value: pseudonymous, kept after erasure so the address is never contacted again. */
export interface SuppressionHash {
  fieldKind: BlindIndexFieldKind;
  normVersion: number;
  value: string;
}

/**
 * HMAC-SHA-256 under the tenant suppression key over "sealpost/suppression/v1/<fieldKind>" 0x00 <value>
 * (the prefix separates email from phone under the single suppression key).
 */
export function suppressionHash(
  key: SuppressionKey,
  fieldKind: BlindIndexFieldKind,
  value: NormalizedEmail | NormalizedPhone,
  normVersion: number,
): SuppressionHash {
  const mac = createHmac('sha256', key.key)
    .update(`sealpost/suppression/v1/${fieldKind}\u0000`, 'utf8')
    .update(value, 'utf8')
    .digest('base64url');
  return { fieldKind, normVersion, value: mac };
}
