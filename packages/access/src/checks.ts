import { AccessError } from './errors';
import { permissionsOf, ruleFor, type AccessPolicy, type MethodRule } from './permission-table';
import type { Principal } from './principal';

/**
 * Authorises `principal` for `method` from the table alone (step-up and purpose are checked separately).
 * Throws PERMISSION_DENIED with METHOD_NOT_ALLOWED (not in the table), SERVICE_NOT_ALLOWED or ROLE_NOT_ALLOWED.
 */
export function authorize(policy: AccessPolicy, method: string, principal: Principal): MethodRule {
  const rule = ruleFor(policy, method);
  if (!rule) throw new AccessError('PERMISSION_DENIED', 'METHOD_NOT_ALLOWED', 'the method is not permitted');
  if (rule.anyAuthenticated) return rule;
  if (principal.kind === 'service') {
    if (!rule.services.includes(principal.service)) {
      throw new AccessError('PERMISSION_DENIED', 'SERVICE_NOT_ALLOWED', 'this service may not call the method');
    }
    return rule;
  }
  if (rule.permission === null || !permissionsOf(policy, principal.roles).has(rule.permission)) {
    throw new AccessError('PERMISSION_DENIED', 'ROLE_NOT_ALLOWED', 'the operator role does not allow the method');
  }
  return rule;
}

/** Authentication methods that count as a second factor for step-up. */
export const STEP_UP_AMR = Object.freeze(['mfa', 'otp']);
export const DEFAULT_STEP_UP_WINDOW_SECONDS = 300;

/** True when an operator proved a second factor within `windowSeconds` (services never need step-up). */
export function hasRecentStepUp(
  principal: Principal,
  options: { windowSeconds?: number; nowSeconds?: number } = {},
): boolean {
  if (principal.kind === 'service') return true;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const window = options.windowSeconds ?? DEFAULT_STEP_UP_WINDOW_SECONDS;
  const age = now - principal.authTime;
  // A future auth_time (beyond small skew) is as suspect as a stale one.
  return principal.amr.some((m) => STEP_UP_AMR.includes(m)) && age <= window && age >= -5;
}

/** Throws PERMISSION_DENIED `STEP_UP_REQUIRED` unless `hasRecentStepUp`. */
export function assertStepUp(
  principal: Principal,
  options: { windowSeconds?: number; nowSeconds?: number } = {},
): void {
  if (!hasRecentStepUp(principal, options)) {
    throw new AccessError('PERMISSION_DENIED', 'STEP_UP_REQUIRED', 'this method needs a recent multi-factor sign-in');
  }
}

/**
 * Tenant isolation on object access: an operator reaches only its own tenant. Services act for every tenant
 * they serve (their reach is limited by the method table). Throws PERMISSION_DENIED `TENANT_MISMATCH`.
 */
export function assertTenantAccess(principal: Principal, tenant: string): void {
  if (principal.kind === 'service') return;
  if (tenant === '' || principal.tenant !== tenant) {
    throw new AccessError('PERMISSION_DENIED', 'TENANT_MISMATCH', 'the object belongs to another tenant');
  }
}

/** Allowed purpose codes and the shape of a ticket reference. */
export interface PurposePolicy {
  readonly codes: readonly string[];
  /** Whole-string pattern for ticket references; without one, tickets are refused. */
  readonly ticketPattern?: RegExp | string;
  /** Codes that must come with a ticket reference. */
  readonly ticketRequiredFor?: readonly string[];
}

/** A validated purpose: a code from the list and an optional ticket reference. Never free text. */
export interface Purpose {
  readonly code: string;
  readonly ticket?: string;
}

export const DEFAULT_PURPOSE_POLICY: PurposePolicy = Object.freeze({
  codes: Object.freeze([
    'SUPPORT_REQUEST',
    'SUBJECT_ACCESS_REQUEST',
    'ERASURE_REQUEST',
    'FRAUD_INVESTIGATION',
    'LEGAL_OBLIGATION',
    'KEY_MAINTENANCE',
  ]),
  ticketPattern: '[A-Z][A-Z0-9]{1,15}-[0-9]{1,10}',
  ticketRequiredFor: Object.freeze(['SUPPORT_REQUEST', 'SUBJECT_ACCESS_REQUEST', 'ERASURE_REQUEST']),
});

const MAX_TICKET_LENGTH = 64;

function wholeMatch(pattern: RegExp | string, value: string): boolean {
  const source = typeof pattern === 'string' ? pattern : pattern.source;
  return new RegExp(`^(?:${source})$`).test(value);
}

/**
 * Validates a stated purpose. Throws INVALID_ARGUMENT naming the field (`purpose` or `ticket`) but never echoing
 * the value: it may be free text with personal data in it, and refusals are logged.
 */
export function parsePurpose(policy: PurposePolicy, code: string | undefined, ticket: string | undefined): Purpose {
  if (code === undefined || code === '') {
    throw new AccessError('INVALID_ARGUMENT', 'PURPOSE_REQUIRED', 'field `purpose` is required: a purpose code');
  }
  if (!policy.codes.includes(code)) {
    throw new AccessError(
      'INVALID_ARGUMENT',
      'PURPOSE_INVALID',
      'field `purpose` must be one of the configured purpose codes',
    );
  }
  if (ticket === undefined || ticket === '') {
    if (policy.ticketRequiredFor?.includes(code)) {
      throw new AccessError('INVALID_ARGUMENT', 'TICKET_INVALID', 'field `ticket` is required for this purpose');
    }
    return Object.freeze({ code });
  }
  if (!policy.ticketPattern || ticket.length > MAX_TICKET_LENGTH || !wholeMatch(policy.ticketPattern, ticket)) {
    throw new AccessError(
      'INVALID_ARGUMENT',
      'TICKET_INVALID',
      'field `ticket` must be a ticket reference of the configured form',
    );
  }
  return Object.freeze({ code, ticket });
}
