import { createHash, createPublicKey } from 'node:crypto';
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { type JwsSigner, type PublicJwk, derToJoseSignature, jwsSigningInput } from './jws-signer';

/**
 * ES256 JWS signer whose private key never leaves AWS KMS (key spec ECC_NIST_P256, usage SIGN_VERIFY).
 * Signs the SHA-256 digest of the JWS signing input (MessageType DIGEST, ECDSA_SHA_256) and converts KMS's DER
 * signature to JOSE's raw r‖s. `kid` defaults to the KMS key id; rotate by pointing at a new key.
 */
export class KmsEs256JwsSigner implements JwsSigner {
  readonly alg = 'ES256' as const;
  readonly kid: string;
  readonly typ: string;
  private jwk: Promise<PublicJwk> | undefined;

  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
    options: { typ: string; kid?: string },
  ) {
    this.typ = options.typ;
    this.kid = options.kid ?? keyId;
  }

  async sign(payload: Uint8Array): Promise<string> {
    const input = jwsSigningInput({ alg: this.alg, kid: this.kid, typ: this.typ }, payload);
    const digest = createHash('sha256').update(input, 'ascii').digest();
    const out = await this.client.send(
      new SignCommand({
        KeyId: this.keyId,
        Message: digest,
        MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      }),
    );
    if (!out.Signature) throw new Error('KMS returned no signature');
    return `${input}.${derToJoseSignature(out.Signature).toString('base64url')}`;
  }

  /** Fetched from KMS once; rejects if the key is missing, not P-256 or not usable for signing. */
  publicJwk(): Promise<PublicJwk> {
    this.jwk ??= (async () => {
      const out = await this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId }));
      if (!out.PublicKey || out.KeySpec !== 'ECC_NIST_P256') throw new Error('KMS key is not an ECC_NIST_P256 key');
      if (out.KeyUsage !== undefined && out.KeyUsage !== 'SIGN_VERIFY') throw new Error('KMS key is not a signing key');
      const pub = createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }).export({
        format: 'jwk',
      });
      if (typeof pub.x !== 'string' || typeof pub.y !== 'string') throw new Error('KMS public key is not an EC key');
      return { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y, kid: this.kid, alg: 'ES256', use: 'sig' };
    })();
    // A failed fetch is not cached: the next call asks KMS again.
    this.jwk.catch(() => (this.jwk = undefined));
    return this.jwk;
  }
}
