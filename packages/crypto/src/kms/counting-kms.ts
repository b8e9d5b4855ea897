import type { EncryptionContext, KeyManagementService } from './key-management-service';

/**
 * Decorator that counts calls reaching the KMS (for metrics and benchmarks: KMS calls per 1,000 ops).
 * It offers encrypt/decrypt only, which is all the key hierarchy uses.
 */
export class CountingKms implements KeyManagementService {
  encrypts = 0;
  decrypts = 0;
  failures = 0;

  constructor(private readonly inner: KeyManagementService) {}

  /** All calls that reached the inner KMS, failed ones included. */
  get calls(): number {
    return this.encrypts + this.decrypts;
  }

  async encrypt(keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    this.encrypts += 1;
    return this.track(this.inner.encrypt(keyId, plaintext, context));
  }

  async decrypt(keyId: string, ciphertextBlob: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    this.decrypts += 1;
    return this.track(this.inner.decrypt(keyId, ciphertextBlob, context));
  }

  private async track<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      this.failures += 1;
      throw error;
    }
  }
}
