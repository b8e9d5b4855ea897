/**
 * Errors raised by the crypto core. Every message is fixed text plus ids or codes: never a key, a
 * plaintext, an email address or a phone number, because callers log and return these messages.
 */

/** Base class: a stable string `code` callers branch on, and the underlying `cause` when there is one. */
export abstract class CryptoError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Why a KMS call could not be made; every value means "retry later", none means "the data is bad". */
export type KmsUnavailableReason =
  | 'unreachable' // connection refused, DNS failure, socket reset
  | 'timeout' // the request or connection timed out
  | 'throttled' // KMS rate limits
  | 'service-error' // KMS answered with a 5xx or an error we do not recognise
  | 'key-unusable'; // the KMS key is disabled, pending deletion or missing

/** KMS could not be reached or could not serve the call (and no cached key could stand in): fail closed. */
export class KmsUnavailableError extends CryptoError {
  readonly code = 'KMS_UNAVAILABLE';

  constructor(
    readonly reason: KmsUnavailableReason,
    options?: { cause?: unknown },
  ) {
    super(`KMS unavailable (${reason})`, options);
  }
}

/** KMS refused to decrypt: wrong key, access denied, or an encryption context that does not match the blob. */
export class KmsAccessDeniedError extends CryptoError {
  readonly code = 'KMS_DECRYPT_REFUSED';

  constructor(
    message = 'KMS refused the request (access denied, wrong key or encryption context mismatch)',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A development stand-in (the local keyring) was asked for in production mode. */
export class DevModeRefusedError extends CryptoError {
  readonly code = 'DEV_MODE_REFUSED';

  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A ciphertext (record or wrapped data key) failed authentication or its framing is wrong: it was
 * altered, moved to another contact/tenant/field list, or opened with the wrong key. Deliberately carries
 * no detail about which byte or which check failed.
 */
export class DecryptionError extends CryptoError {
  readonly code = 'RECORD_TAMPERED';

  constructor(
    /** Which object failed, so an operator knows whether to look at the record or at the key store. */
    readonly part: 'record' | 'data-key',
    options?: { cause?: unknown },
  ) {
    super(
      part === 'record' ? 'Encrypted record failed authentication' : 'Wrapped data key failed authentication',
      options,
    );
  }
}

/** The field kinds that are validated and normalised. */
export type ValidatedField = 'email' | 'phone';

/** An email or phone number that cannot be normalised. The message names the field, never the value. */
export class InvalidFieldError extends CryptoError {
  readonly code = 'INVALID_ARGUMENT';

  constructor(
    readonly field: ValidatedField,
    /** A short fixed phrase ("missing domain"), never derived from the value. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Invalid ${field}: ${reason}`, options);
  }
}

/** A tenant key (KEK, index root, suppression key) or a data key that should exist does not. */
export class KeyNotFoundError extends CryptoError {
  readonly code = 'KEY_NOT_FOUND';
}

/** The local keyring file is unreadable, malformed, or readable by other users. */
export class KeyringError extends CryptoError {
  readonly code = 'KEYRING_INVALID';
}
