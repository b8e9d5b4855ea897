import { sealpostMetrics, type BoundCounter } from '@sealpost/telemetry';
import { KmsAccessDeniedError } from '../errors';
import type { EncryptionContext, GeneratedDataKey, KeyManagementService } from './key-management-service';

type Operation = 'encrypt' | 'decrypt' | 'generate_data_key';
type Outcome = 'ok' | 'unavailable' | 'refused';

/**
 * Decorator counting KMS calls by operation and outcome (`sealpost_kms_calls_total`): `refused` when the KMS
 * denied the request (wrong key or context), `unavailable` for any other failure (outage, throttling).
 * createKeyManagementService applies it to the adapter it builds.
 */
export class MeteredKms implements KeyManagementService {
  private readonly calls: Readonly<Record<Operation, Readonly<Record<Outcome, BoundCounter>>>>;
  readonly generateDataKey?: (keyId: string, context: EncryptionContext) => Promise<GeneratedDataKey>;

  /** `inner`: the adapter measured (e.g. to `destroy()` an AwsKms). */
  constructor(readonly inner: KeyManagementService) {
    const counter = sealpostMetrics('crypto').counter('sealpost_kms_calls_total');
    const outcomes = (operation: Operation) => ({
      ok: counter.bind({ operation, outcome: 'ok' }),
      unavailable: counter.bind({ operation, outcome: 'unavailable' }),
      refused: counter.bind({ operation, outcome: 'refused' }),
    });
    this.calls = {
      encrypt: outcomes('encrypt'),
      decrypt: outcomes('decrypt'),
      generate_data_key: outcomes('generate_data_key'),
    };
    const generate = inner.generateDataKey?.bind(inner);
    if (generate) this.generateDataKey = (keyId, context) => this.track('generate_data_key', generate(keyId, context));
  }

  encrypt(keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    return this.track('encrypt', this.inner.encrypt(keyId, plaintext, context));
  }

  decrypt(keyId: string, ciphertextBlob: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    return this.track('decrypt', this.inner.decrypt(keyId, ciphertextBlob, context));
  }

  private async track<T>(operation: Operation, call: Promise<T>): Promise<T> {
    try {
      const result = await call;
      this.calls[operation].ok.add(1);
      return result;
    } catch (error) {
      this.calls[operation][error instanceof KmsAccessDeniedError ? 'refused' : 'unavailable'].add(1);
      throw error;
    }
  }
}
