import { AppError, type ErrorCategory } from './app-error';

/** Stable reasons the access layer refuses with (sent in `x-sealpost-reason`, and in decision events). */
export type AccessReason =
  | 'TRANSPORT_NOT_SECURE'
  | 'PEER_CERT_MISSING'
  | 'PEER_IDENTITY_INVALID'
  | 'TRUST_DOMAIN_MISMATCH'
  | 'NAMESPACE_MISMATCH'
  | 'TOKEN_MISSING'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_KEYS_UNAVAILABLE'
  | 'METHOD_NOT_ALLOWED'
  | 'ROLE_NOT_ALLOWED'
  | 'SERVICE_NOT_ALLOWED'
  | 'TENANT_MISMATCH'
  | 'STEP_UP_REQUIRED'
  | 'SESSION_REVOKED'
  | 'PURPOSE_REQUIRED'
  | 'PURPOSE_INVALID'
  | 'TICKET_INVALID';

/**
 * A refusal by the access layer: UNAUTHENTICATED, PERMISSION_DENIED or INVALID_ARGUMENT with a stable reason
 * (UNAVAILABLE only when the token issuer's keys cannot be fetched, so callers retry instead of re-login).
 */
export class AccessError extends AppError {
  declare readonly reason: AccessReason;

  constructor(
    code: Extract<ErrorCategory, 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'INVALID_ARGUMENT' | 'UNAVAILABLE'>,
    reason: AccessReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, reason, message, options);
    this.name = 'AccessError';
  }
}

/** A development stand-in (dev CA, dev tokens) was asked for in production mode. */
export class DevModeRefusedError extends Error {
  readonly code = 'DEV_MODE_REFUSED';

  constructor(what: string) {
    super(`${what} is a development stand-in and is refused in production mode`);
    this.name = 'DevModeRefusedError';
  }
}

/** TLS material is missing, unreadable, malformed, or not acceptable for the mode. */
export class TlsMaterialError extends Error {
  readonly code: 'TLS_MATERIAL_INVALID' | 'DEV_CA_IN_PRODUCTION';

  constructor(code: TlsMaterialError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsMaterialError';
    this.code = code;
  }
}

/** The access policy (permission table, roles, purposes) is inconsistent; raised at start-up. */
export class AccessPolicyError extends Error {
  readonly code = 'ACCESS_POLICY_INVALID';

  constructor(message: string) {
    super(message);
    this.name = 'AccessPolicyError';
  }
}
