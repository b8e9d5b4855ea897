import {
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { KmsAccessDeniedError, KmsUnavailableError, type KmsUnavailableReason } from '../errors';
import {
  assertIdOnlyContext,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyManagementService,
} from './key-management-service';

/** Settings for `AwsKms`. Credentials default to the SDK chain (workload identity in Kubernetes). */
export interface AwsKmsOptions {
  region: string;
  /** Override the endpoint, e.g. a VPC endpoint, or `http://127.0.0.1:4599` for the local-kms emulator. */
  endpoint?: string;
  credentials?: KMSClientConfig['credentials'];
  /** Total attempts per call including the first (default 2): an outage should surface fast, the cache covers it. */
  maxAttempts?: number;
  /** Per-request socket timeout in ms (default 2000). */
  requestTimeoutMs?: number;
  /** TCP connect timeout in ms (default 1000). */
  connectionTimeoutMs?: number;
}

// Errors that mean "this blob, key or caller is not allowed": retrying cannot help and the cause may be
// tampering (a context mismatch surfaces as InvalidCiphertextException).
const REFUSED = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'AccessDeniedException',
  'InvalidKeyUsageException',
  'InvalidGrantTokenException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
]);
const UNAVAILABLE_BY_NAME: Record<string, KmsUnavailableReason> = {
  ThrottlingException: 'throttled',
  LimitExceededException: 'throttled',
  TooManyRequestsException: 'throttled',
  TimeoutError: 'timeout',
  DependencyTimeoutException: 'timeout',
  RequestTimeout: 'timeout',
  RequestTimeoutException: 'timeout',
  DisabledException: 'key-unusable',
  KMSInvalidStateException: 'key-unusable',
  NotFoundException: 'key-unusable',
  KeyUnavailableException: 'key-unusable',
  KMSInternalException: 'service-error',
};
const NETWORK_CODES = new Set([
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);

/** Maps an SDK or socket error to the two typed KMS errors; exported for the adapter's unit test. */
export function mapKmsError(error: unknown): KmsUnavailableError | KmsAccessDeniedError {
  const code = errorCode(error);
  // Socket codes first: the SDK renames ECONNRESET/EPIPE to TimeoutError, but a reset is an unreachable peer.
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return new KmsUnavailableError(code === 'ETIMEDOUT' ? 'timeout' : 'unreachable', { cause: error });
  }
  const name = errorName(error);
  if (REFUSED.has(name)) {
    return new KmsAccessDeniedError(`KMS refused the request (${name})`, { cause: error });
  }
  const reason = UNAVAILABLE_BY_NAME[name];
  if (reason) {
    return new KmsUnavailableError(reason, { cause: error });
  }
  // Anything unrecognised fails closed as an outage: the caller retries later rather than treating the
  // data as tampered.
  return new KmsUnavailableError('service-error', { cause: error });
}

// Duck-typed rather than `instanceof Error`: errors can come from another realm (vm contexts, jest), and
// the SDK then wraps them as "AWS SDK error wrapper for <Name>: <message>", keeping only the text.
function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return code;
  const wrapped = typeof message === 'string' ? /^AWS SDK error wrapper for .*?\b(E[A-Z]{3,})\b/.exec(message) : null;
  return wrapped?.[1];
}

function errorName(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '';
  const { name, message } = error as { name?: unknown; message?: unknown };
  const wrapped = typeof message === 'string' ? /^AWS SDK error wrapper for (\w+)/.exec(message) : null;
  if (wrapped?.[1]) return wrapped[1];
  return typeof name === 'string' ? name : '';
}

/** `KeyManagementService` on AWS KMS (or the local-kms emulator through `endpoint`). */
export class AwsKms implements KeyManagementService {
  private readonly client: KMSClient;

  constructor(options: AwsKmsOptions) {
    this.client = new KMSClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: options.maxAttempts ?? 2,
      requestHandler: {
        requestTimeout: options.requestTimeoutMs ?? 2000,
        connectionTimeout: options.connectionTimeoutMs ?? 1000,
      },
    });
  }

  async encrypt(keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    assertIdOnlyContext(context);
    const out = await guard(() =>
      this.client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: { ...context } })),
    );
    if (!out.CiphertextBlob) throw new KmsUnavailableError('service-error');
    return out.CiphertextBlob;
  }

  async decrypt(keyId: string, ciphertextBlob: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    assertIdOnlyContext(context);
    // KeyId is passed so KMS refuses a blob made under another key instead of silently using it.
    const out = await guard(() =>
      this.client.send(
        new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertextBlob, EncryptionContext: { ...context } }),
      ),
    );
    if (!out.Plaintext) throw new KmsUnavailableError('service-error');
    return out.Plaintext;
  }

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<GeneratedDataKey> {
    assertIdOnlyContext(context);
    const out = await guard(() =>
      this.client.send(
        new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { ...context } }),
      ),
    );
    if (!out.Plaintext || !out.CiphertextBlob) throw new KmsUnavailableError('service-error');
    return { plaintext: out.Plaintext, ciphertextBlob: out.CiphertextBlob };
  }

  /** Closes pooled sockets. */
  destroy(): void {
    this.client.destroy();
  }
}

async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw mapKmsError(error);
  }
}
