import { InvalidCiphertextException, KMSInternalException } from '@aws-sdk/client-kms';
import { KmsAccessDeniedError, KmsUnavailableError } from '../errors';
import { mapKmsError } from './aws-kms';

function named(name: string): Error {
  const error = new Error('from the SDK');
  error.name = name;
  return error;
}

function errno(code: string): Error {
  return Object.assign(new Error(`connect ${code}`), { code });
}

describe('mapKmsError', () => {
  it.each([
    [new InvalidCiphertextException({ message: 'context mismatch', $metadata: {} })],
    [named('AccessDeniedException')],
    [named('IncorrectKeyException')],
    [named('UnrecognizedClientException')],
  ])('maps %s to KMS_DECRYPT_REFUSED', (error) => {
    const mapped = mapKmsError(error);
    expect(mapped).toBeInstanceOf(KmsAccessDeniedError);
    expect(mapped.code).toBe('KMS_DECRYPT_REFUSED');
    expect(mapped.cause).toBe(error);
  });

  it.each([
    [errno('ECONNREFUSED'), 'unreachable'],
    [errno('ENOTFOUND'), 'unreachable'],
    [errno('ECONNRESET'), 'unreachable'],
    [errno('ETIMEDOUT'), 'timeout'],
    [named('TimeoutError'), 'timeout'],
    [named('ThrottlingException'), 'throttled'],
    [named('DisabledException'), 'key-unusable'],
    [named('NotFoundException'), 'key-unusable'],
    [new KMSInternalException({ message: 'oops', $metadata: {} }), 'service-error'],
    [Object.assign(named('TimeoutError'), { code: 'ECONNRESET' }), 'unreachable'],
    [new Error('AWS SDK error wrapper for TimeoutError: socket hang up'), 'timeout'],
    [new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:4599'), 'unreachable'],
    [new Error('AWS SDK error wrapper for ThrottlingException: slow'), 'throttled'],
    [new Error('something new'), 'service-error'],
    ['not even an error', 'service-error'],
  ])('maps %s to KMS_UNAVAILABLE (%s)', (error, reason) => {
    const mapped = mapKmsError(error);
    expect(mapped).toBeInstanceOf(KmsUnavailableError);
    expect(mapped).toMatchObject({ code: 'KMS_UNAVAILABLE', reason });
    expect(mapped.message).toBe(`KMS unavailable (${reason})`);
  });
});
