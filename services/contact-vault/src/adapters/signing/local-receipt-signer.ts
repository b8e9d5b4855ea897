/**
 * Erasure receipts signed with a local Ed25519 key (embedded mode only): `<dataDir>/contact-vault/
 * receipt-signing.jwk.json`, file mode 0600, created on first use. Production needs a KMS signing key.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ReceiptSigner } from '../../ports/receipt-signer';

export const RECEIPT_KEY_FILE = path.join('contact-vault', 'receipt-signing.jwk.json');

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** RFC 7638 thumbprint of an OKP public key. */
function thumbprint(jwk: { crv: string; kty: string; x: string }): string {
  return b64url(
    createHash('sha256')
      .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x }))
      .digest(),
  );
}

async function loadOrCreate(file: string): Promise<JsonWebKey> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JsonWebKey;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(jwk), { mode: 0o600 });
  // link() refuses to overwrite: a concurrent first start keeps one key.
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return JSON.parse(await readFile(file, 'utf8')) as JsonWebKey;
  } finally {
    await rm(tmp, { force: true });
  }
  return jwk;
}

/** Opens (creating) the local receipt key under `dataDir`. Throws in production mode (KMS key required). */
export async function openLocalReceiptSigner(options: { dataDir: string; mode: string }): Promise<ReceiptSigner> {
  if (options.mode === 'production') {
    throw new Error(
      'erasure receipts in production are signed by a KMS key (SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID); the local file key is refused',
    );
  }
  const key: KeyObject = createPrivateKey({
    key: await loadOrCreate(path.join(options.dataDir, RECEIPT_KEY_FILE)),
    format: 'jwk',
  });
  const pub = createPublicKey(key).export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
  const kid = thumbprint(pub);
  return {
    kid,
    publicJwk: Object.freeze({ kty: pub.kty, crv: pub.crv, x: pub.x, kid, alg: 'EdDSA', use: 'sig' }),
    async sign(payload, typ) {
      const header = b64url(JSON.stringify({ alg: 'EdDSA', kid, typ }));
      const body = b64url(JSON.stringify(payload));
      return `${header}.${body}.${b64url(sign(null, Buffer.from(`${header}.${body}`), key))}`;
    },
  };
}

/** Verifies a compact EdDSA JWS against a public JWK and returns its payload; throws on a bad signature. */
export function verifyReceipt(jws: string, publicJwk: Readonly<Record<string, string>>): Record<string, unknown> {
  const [header, body, signature] = jws.split('.');
  if (!header || !body || !signature) throw new Error('not a compact JWS');
  const pub = createPublicKey({
    key: { kty: publicJwk['kty'], crv: publicJwk['crv'], x: publicJwk['x'] } as JsonWebKey,
    format: 'jwk',
  });
  if (!verify(null, Buffer.from(`${header}.${body}`), pub, Buffer.from(signature, 'base64url'))) {
    throw new Error('receipt signature does not verify');
  }
  return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
}
