import { randomFillSync } from 'node:crypto';
import { invalidField } from './errors';

/**
 * Tenant ids travel in NATS subjects, KMS encryption contexts and AAD, so they are restricted to one subject token:
 * letters, digits, `_` and `-` (no dots, wildcards or free text).
 */
export const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Contact ids: `ct_` + 9 base36 characters of milliseconds (so ids sort by creation, which keeps list pages and
 * indexes tidy) + 20 hex characters of randomness. The prefix keeps an id from ever reading as a phone number.
 */
export const CONTACT_ID = /^ct_[0-9a-z]{9}[0-9a-f]{20}$/;

const ID_RANDOM_BYTES = 10;
const randomPool = Buffer.alloc(ID_RANDOM_BYTES * 256);
let randomOffset = randomPool.length;

/** A fresh contact id. */
export function newContactId(now: number = Date.now()): string {
  // Random bytes come from a pool refilled 256 ids at a time: one CSPRNG call per id was a visible share of an import
  // row. Each byte is used once.
  if (randomOffset + ID_RANDOM_BYTES > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const random = randomPool.toString('hex', randomOffset, randomOffset + ID_RANDOM_BYTES);
  randomOffset += ID_RANDOM_BYTES;
  return `ct_${now.toString(36).padStart(9, '0')}${random}`;
}

/** Throws INVALID_ARGUMENT (field `tenant_id`) unless `value` is a tenant id. */
export function assertTenantId(value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw invalidField('tenant_id', 'is required');
  if (!TENANT_ID.test(value)) throw invalidField('tenant_id', 'must be 1–64 characters of A-Z a-z 0-9 _ -');
}

/** Throws INVALID_ARGUMENT (field `contact_id`) unless `value` is a contact id. */
export function assertContactId(value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw invalidField('contact_id', 'is required');
  if (!CONTACT_ID.test(value)) throw invalidField('contact_id', 'is not a contact id');
}
