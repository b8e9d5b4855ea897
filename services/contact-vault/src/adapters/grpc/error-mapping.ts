import { DecryptionError, KeyNotFoundError, KmsAccessDeniedError, KmsUnavailableError } from '@sealpost/crypto';
import { AppError } from '@sealpost/server';
import { VaultError } from '../../domain';

/**
 * The one place vault and crypto errors become gRPC statuses with a stable reason. Messages are the errors' own
 * fixed texts (field names and ids only); anything unknown stays internal.
 */
export function toAppError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof VaultError) {
    switch (err.code) {
      case 'INVALID_ARGUMENT':
        return new AppError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', err.message, { cause: err });
      case 'DEDUPE_CONFLICT':
        return new AppError('ALREADY_EXISTS', 'DEDUPE_CONFLICT', err.message, { cause: err });
      case 'CONTACT_NOT_FOUND':
        return new AppError('NOT_FOUND', 'CONTACT_NOT_FOUND', err.message, { cause: err });
      case 'CONCURRENT_UPDATE':
        return new AppError('ABORTED', 'CONCURRENT_UPDATE', err.message, { cause: err });
      case 'AUDIT_UNAVAILABLE':
        return new AppError('UNAVAILABLE', 'AUDIT_UNAVAILABLE', err.message, { cause: err });
      case 'AUDIT_PROOF_INVALID':
        return new AppError('INTERNAL', 'AUDIT_PROOF_INVALID', err.message, { cause: err });
      case 'RECORD_SWAPPED':
        return new AppError('FAILED_PRECONDITION', 'RECORD_SWAPPED', err.message, { cause: err });
      case 'QUOTA_EXCEEDED':
        return new AppError('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', err.message, { cause: err });
      case 'NOT_ALLOWED':
        return new AppError('PERMISSION_DENIED', 'NOT_ALLOWED', err.message, { cause: err });
      case 'OPERATION_NOT_FOUND':
        return new AppError('NOT_FOUND', 'OPERATION_NOT_FOUND', err.message, { cause: err });
      case 'FAILED_PRECONDITION':
        return new AppError('FAILED_PRECONDITION', 'FAILED_PRECONDITION', err.message, { cause: err });
    }
  }
  if (err instanceof KmsUnavailableError) {
    return new AppError('UNAVAILABLE', 'KMS_UNAVAILABLE', `key service unavailable (${err.reason})`, { cause: err });
  }
  if (err instanceof KmsAccessDeniedError) {
    return new AppError('FAILED_PRECONDITION', 'KMS_DECRYPT_REFUSED', 'the key service refused this tenant key', {
      cause: err,
    });
  }
  if (err instanceof KeyNotFoundError) {
    return new AppError('FAILED_PRECONDITION', 'KEY_NOT_FOUND', 'a key this contact needs does not exist', {
      cause: err,
    });
  }
  if (err instanceof DecryptionError) {
    // Integrity failure of stored data: say so, but give no detail to the caller.
    return new AppError('INTERNAL', 'RECORD_TAMPERED', 'the stored contact failed authentication', { cause: err });
  }
  return err;
}
