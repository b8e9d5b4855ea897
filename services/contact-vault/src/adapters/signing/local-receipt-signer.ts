/**
 * Erasure receipts signed with a local Ed25519 key (embedded mode only): `<dataDir>/contact-vault/
 * receipt-signing.jwk.json`, file mode 0600, created on first use. Production signs with a KMS key.
 */
import path from 'node:path';
import { LocalEd25519JwsSigner, type PublicJwk, verifyCompactJws } from '@sealpost/crypto';
import { ERASURE_RECEIPT_TYP } from '../../app/erase-contact';
import type { ReceiptSigner } from '../../ports/receipt-signer';
import { jwsReceiptSigner } from './jws-receipt-signer';

/** Kept under its historical name; new files hold PKCS#8 PEM, older ones a private JWK (both are read). */
export const RECEIPT_KEY_FILE = path.join('contact-vault', 'receipt-signing.jwk.json');

/** Opens (creating) the local receipt key under `dataDir`. Throws in production mode (KMS key required). */
export async function openLocalReceiptSigner(options: { dataDir: string; mode: string }): Promise<ReceiptSigner> {
  if (options.mode === 'production') {
    throw new Error(
      'erasure receipts in production are signed by a KMS key (SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID); the local file key is refused',
    );
  }
  const file = path.join(options.dataDir, RECEIPT_KEY_FILE);
  return jwsReceiptSigner(
    await LocalEd25519JwsSigner.fromFile(file, { typ: ERASURE_RECEIPT_TYP }),
    ERASURE_RECEIPT_TYP,
  );
}

/**
 * Verifies a compact receipt JWS (EdDSA or ES256, `typ` ERASURE_RECEIPT_TYP) against the key its `kid` names and
 * returns its payload; throws on an unknown kid or a bad signature.
 */
export function verifyReceipt(jws: string, keys: PublicJwk | readonly PublicJwk[]): Record<string, unknown> {
  const list: readonly PublicJwk[] = Array.isArray(keys) ? keys : [keys as PublicJwk];
  const { payload } = verifyCompactJws(jws, list, { typ: ERASURE_RECEIPT_TYP });
  return JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
}

/**
 * The public key of the local receipt key under `dataDir` (embedded mode), for verifiers; never creates a key.
 * Throws when there is none.
 */
export async function localReceiptPublicJwk(dataDir: string): Promise<PublicJwk> {
  return LocalEd25519JwsSigner.publicJwkFromFile(path.join(dataDir, RECEIPT_KEY_FILE));
}
