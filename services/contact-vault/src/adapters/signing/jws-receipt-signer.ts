import type { JwsSigner } from '@sealpost/crypto';
import type { ReceiptSigner } from '../../ports/receipt-signer';

/**
 * A ReceiptSigner over a @sealpost/crypto JwsSigner whose header `typ` is `typ`. The public key is fetched now,
 * so a missing or unusable key fails at start-up rather than at the first erasure.
 */
export async function jwsReceiptSigner(signer: JwsSigner, typ: string): Promise<ReceiptSigner> {
  const publicJwk = Object.freeze(await signer.publicJwk());
  return {
    kid: signer.kid,
    alg: signer.alg,
    publicJwk,
    async sign(payload, wanted) {
      // The JWS typ is fixed per signer; signing under another typ would mislabel the receipt.
      if (wanted !== typ) throw new Error(`receipt signer signs typ ${typ} only`);
      return signer.sign(Buffer.from(JSON.stringify(payload), 'utf8'));
    },
  };
}
