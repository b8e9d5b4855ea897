/**
 * Errors of the vault's domain and use cases. Messages are fixed text plus field names and ids: never an email
 * address, a phone number or a name, because callers log and return them.
 */

/** Stable codes the gRPC adapter maps to statuses (one place: adapters/grpc/error-mapping.ts). */
export type VaultErrorCode =
  | 'INVALID_ARGUMENT' // a field is malformed or too large; `field` names it
  | 'DEDUPE_CONFLICT' // the request's addresses belong to different existing contacts; nothing merged
  | 'CONTACT_NOT_FOUND'
  | 'CONCURRENT_UPDATE' // the contact kept changing under us; retry
  | 'AUDIT_UNAVAILABLE' // the audit event was not durably accepted, so the read was refused (fail closed)
  | 'AUDIT_PROOF_INVALID' // the audit service's proof does not show the vault's entry under its signed head
  | 'RECORD_SWAPPED' // the decrypted values do not match the contact's blind indexes: refused, nothing returned
  | 'QUOTA_EXCEEDED' // the principal (or purpose) used up its window; retry later
  | 'NOT_ALLOWED' // the caller may not use this method whatever the table says (e.g. resolve by a non-dispatch identity)
  | 'OPERATION_NOT_FOUND'
  | 'FAILED_PRECONDITION'; // the request cannot run in the current state (e.g. production without a receipt key)

/** A refusal a caller can act on; `field` is the request field concerned (never its value). */
export class VaultError extends Error {
  override readonly name = 'VaultError';

  constructor(
    readonly code: VaultErrorCode,
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand for an INVALID_ARGUMENT naming `field`; `why` is a fixed phrase, never derived from the value. */
export function invalidField(field: string, why: string, cause?: unknown): VaultError {
  return new VaultError('INVALID_ARGUMENT', `${field}: ${why}`, field, cause === undefined ? undefined : { cause });
}
