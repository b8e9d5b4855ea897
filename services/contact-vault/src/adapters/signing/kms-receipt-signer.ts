import { KMSClient } from '@aws-sdk/client-kms';
import { KmsEs256JwsSigner } from '@sealpost/crypto';
import { ERASURE_RECEIPT_TYP } from '../../app/erase-contact';
import type { ReceiptSigner } from '../../ports/receipt-signer';
import { jwsReceiptSigner } from './jws-receipt-signer';

/** The receipt signer cannot be built from this configuration; the vault must not start. */
export class ReceiptSignerError extends Error {
  override readonly name = 'ReceiptSignerError';
  readonly code = 'RECEIPT_SIGNER_NOT_CONFIGURED';
}

/** Where the KMS receipt key is; credentials come from the AWS SDK's default chain (IRSA in Kubernetes). */
export interface KmsReceiptSignerOptions {
  readonly keyId: string;
  readonly region: string;
  readonly endpoint?: string;
  /** For tests against local-kms; production leaves it to the default chain. */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Erasure receipts signed ES256 by the KMS key named by SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID (ECC_NIST_P256,
 * SIGN_VERIFY; the vault's role needs kms:Sign and kms:GetPublicKey). Its public key is fetched here, so a missing
 * key, a key of the wrong spec or a missing permission stop start-up.
 */
export async function openKmsReceiptSigner(options: KmsReceiptSignerOptions): Promise<ReceiptSigner> {
  const client = new KMSClient({
    region: options.region,
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    maxAttempts: 3,
  });
  try {
    return await jwsReceiptSigner(
      new KmsEs256JwsSigner(client, options.keyId, { typ: ERASURE_RECEIPT_TYP }),
      ERASURE_RECEIPT_TYP,
    );
  } catch (cause) {
    client.destroy();
    throw new ReceiptSignerError(
      'the erasure-receipt signing key (SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID) is not a usable ECC_NIST_P256 ' +
        'SIGN_VERIFY KMS key (missing, wrong key spec, or no kms:GetPublicKey permission)',
      { cause },
    );
  }
}
