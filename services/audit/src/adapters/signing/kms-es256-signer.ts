import { createHash, createPublicKey } from 'node:crypto';
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { type JWK, exportJWK } from 'jose';
import type { TreeHeadSigner } from '../../ports/tree-head-signer';
import { derToJoseSignature, jwsSigningInput } from './jws';

/**
 * ES256 tree-head signer whose private key never leaves AWS KMS (key spec ECC_NIST_P256, usage SIGN_VERIFY).
 * Signs the SHA-256 digest of the JWS signing input (MessageType DIGEST, ECDSA_SHA_256) and converts KMS's DER
 * signature to JOSE's raw r‖s. `kid` defaults to the KMS key id; rotate by pointing at a new key.
 */
export class KmsEs256Signer implements TreeHeadSigner {
  readonly alg = 'ES256' as const;
  private jwk: Promise<JWK> | undefined;

  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
    readonly kid: string = keyId,
  ) {}

  async sign(payload: Uint8Array): Promise<string> {
    const input = jwsSigningInput(this.alg, this.kid, payload);
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

  publicJwk(): Promise<JWK> {
    this.jwk ??= (async () => {
      const out = await this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId }));
      if (!out.PublicKey || out.KeySpec !== 'ECC_NIST_P256') throw new Error('KMS key is not an ECC_NIST_P256 key');
      const key = createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
      return { ...(await exportJWK(key)), kid: this.kid, alg: 'ES256', use: 'sig' };
    })();
    return this.jwk;
  }
}
