import { createHmac, hkdfSync } from 'node:crypto';
import type { KeyHierarchy } from '@sealpost/crypto';
import { assertTenantId } from '../domain';

const FINGERPRINT_HKDF_SALT = Buffer.from('sealpost/vault/request-fingerprint/salt/v1', 'utf8');
const FINGERPRINT_HKDF_INFO = 'sealpost/vault/request-fingerprint/v1';

/**
 * A keyed fingerprint of a request's contact fields, for request-id idempotency. The idempotency records are shared
 * by every replica in the contact store, so the fingerprint must be the same on each of them, yet must not be an
 * unkeyed hash (a dictionary attack on a database dump would reverse it): an HMAC under a key derived (HKDF) from the
 * tenant's current email blind-index key — held only in memory, like the index keys themselves.
 *
 * After an index-root rotation the fingerprint changes, so a retry that straddles the rotation is refused as
 * REQUEST_ID_REUSED rather than run twice.
 * @throws VaultError INVALID_ARGUMENT for a malformed tenant id; KMS errors when the index key must be unwrapped
 */
export async function contactFieldsFingerprint(
  keys: KeyHierarchy,
  tenantId: string,
  fields: { readonly email: string; readonly phone: string; readonly name: string },
): Promise<string> {
  assertTenantId(tenantId);
  const indexKeys = await keys.currentIndexKeys(tenantId);
  const key = Buffer.from(hkdfSync('sha256', indexKeys.keys.email, FINGERPRINT_HKDF_SALT, FINGERPRINT_HKDF_INFO, 32));
  try {
    const mac = createHmac('sha256', key)
      .update(JSON.stringify([fields.email, fields.phone, fields.name]))
      .digest('base64url');
    return `${indexKeys.keyVersion}.${mac}`;
  } finally {
    key.fill(0);
  }
}
