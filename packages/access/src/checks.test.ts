import { assertStepUp, assertTenantAccess, DEFAULT_PURPOSE_POLICY, hasRecentStepUp, parsePurpose } from './checks';
import type { OperatorPrincipal, ServicePrincipal } from './principal';

const NOW = 1_800_000_000;
const op = (over: Partial<OperatorPrincipal> = {}): OperatorPrincipal => ({
  kind: 'operator',
  subject: 'op-1',
  tenant: 't1',
  roles: ['support'],
  amr: ['pwd', 'mfa'],
  authTime: NOW - 10,
  sessionVersion: 1,
  issuer: 'https://identity.test',
  ...over,
});
const svc: ServicePrincipal = {
  kind: 'service',
  service: 'dispatch',
  trustDomain: 'sealpost.dev',
  spiffeId: 'spiffe://sealpost.dev/dispatch',
};

describe('step-up', () => {
  it.each([
    [['pwd', 'mfa'], NOW - 10, true],
    [['otp'], NOW - 300, true],
    [['pwd', 'mfa'], NOW - 301, false],
    [['pwd'], NOW, false],
    [['hwk'], NOW, false],
    [['mfa'], NOW + 3600, false],
  ])('amr %j at auth_time offset → %s', (amr, authTime, expected) => {
    expect(hasRecentStepUp(op({ amr, authTime }), { nowSeconds: NOW })).toBe(expected);
  });

  it('honours a configured window and throws STEP_UP_REQUIRED', () => {
    expect(hasRecentStepUp(op({ authTime: NOW - 100 }), { nowSeconds: NOW, windowSeconds: 60 })).toBe(false);
    expect(() => assertStepUp(op({ amr: ['pwd'] }), { nowSeconds: NOW })).toThrow(
      expect.objectContaining({ code: 'PERMISSION_DENIED', reason: 'STEP_UP_REQUIRED' }),
    );
  });
});

describe('assertTenantAccess', () => {
  it('allows the operator its own tenant only', () => {
    expect(() => assertTenantAccess(op(), 't1')).not.toThrow();
    for (const other of ['t2', 'T1', '', 't1 ']) {
      expect(() => assertTenantAccess(op(), other)).toThrow(
        expect.objectContaining({ code: 'PERMISSION_DENIED', reason: 'TENANT_MISMATCH' }),
      );
    }
  });

  it('lets services act for any tenant (the method table limits them)', () => {
    expect(() => assertTenantAccess(svc, 't2')).not.toThrow();
  });
});

describe('parsePurpose', () => {
  it('accepts a configured code with a well-formed ticket', () => {
    expect(parsePurpose(DEFAULT_PURPOSE_POLICY, 'SUPPORT_REQUEST', 'SUP-42')).toEqual({
      code: 'SUPPORT_REQUEST',
      ticket: 'SUP-42',
    });
    expect(parsePurpose(DEFAULT_PURPOSE_POLICY, 'FRAUD_INVESTIGATION', undefined)).toEqual({
      code: 'FRAUD_INVESTIGATION',
    });
  });

  it.each([
    [undefined, undefined, 'PURPOSE_REQUIRED'],
    ['', undefined, 'PURPOSE_REQUIRED'],
    ['support_request', 'SUP-1', 'PURPOSE_INVALID'],
    ['calling about jane.doe@example.com', undefined, 'PURPOSE_INVALID'],
    ['SUPPORT_REQUEST', undefined, 'TICKET_INVALID'],
    ['SUPPORT_REQUEST', 'SUP-1 jane.doe@example.com', 'TICKET_INVALID'],
    ['SUPPORT_REQUEST', 'xSUP-1', 'TICKET_INVALID'],
    ['SUPPORT_REQUEST', 'SUP-1\n', 'TICKET_INVALID'],
  ])('refuses purpose %j ticket %j with %s, naming the field but not the value', (code, ticket, reason) => {
    let caught: unknown;
    try {
      parsePurpose(DEFAULT_PURPOSE_POLICY, code, ticket);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
    const message = (caught as Error).message;
    expect(message).toMatch(/`(purpose|ticket)`/);
    expect(message).not.toContain('jane');
    if (code) expect(message).not.toContain(code);
  });

  it('refuses every ticket when no pattern is configured', () => {
    expect(() => parsePurpose({ codes: ['X_Y'] }, 'X_Y', 'ABC-1')).toThrow(
      expect.objectContaining({ reason: 'TICKET_INVALID' }),
    );
  });
});
