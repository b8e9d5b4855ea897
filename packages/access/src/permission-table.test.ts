import { authorize } from './checks';
import { AccessError } from './errors';
import {
  DEFAULT_ACCESS_POLICY,
  DEFAULT_METHOD_RULES,
  INFRASTRUCTURE_METHODS,
  definePolicy,
  permissionsOf,
  withServiceGrants,
} from './permission-table';
import type { OperatorPrincipal, ServicePrincipal } from './principal';

const V = '/sealpost.vault.v1.ContactVault/';
const A = '/sealpost.audit.v1.AuditLog/';

const operator = (roles: string[]): OperatorPrincipal => ({
  kind: 'operator',
  subject: 'op-1',
  tenant: 't1',
  roles,
  amr: ['pwd', 'mfa'],
  authTime: Math.floor(Date.now() / 1000),
  sessionVersion: 1,
  issuer: 'https://identity.test',
});
const service = (name: string): ServicePrincipal => ({
  kind: 'service',
  service: name,
  trustDomain: 'sealpost.dev',
  spiffeId: `spiffe://sealpost.dev/${name}`,
});

// The intended least-privilege matrix, written out independently of the table it checks.
const ALLOWED_BY_ROLE: Record<string, string[]> = {
  admin: ['UpsertContact', 'ImportContacts', 'GetContact', 'ListContacts', 'GetOperation', 'RotateTenantKey'],
  dpo: [
    'GetContact',
    'ListContacts',
    'GetOperation',
    'FindContacts',
    'RevealContact',
    'EraseContact',
    'ExportContact',
    'GetSignedTreeHead',
    'GetInclusionProof',
    'GetConsistencyProof',
    'QueryEntries',
  ],
  support: ['GetContact', 'ListContacts', 'GetOperation', 'FindContacts', 'RevealContact'],
  marketer: ['UpsertContact', 'ImportContacts', 'GetContact', 'ListContacts', 'GetOperation'],
  // GetEntries returns raw entries of every tenant: no per-tenant role reaches it, only the log verifier.
  auditor: ['GetSignedTreeHead', 'GetInclusionProof', 'GetConsistencyProof', 'QueryEntries'],
  'log-verifier': ['GetSignedTreeHead', 'GetInclusionProof', 'GetConsistencyProof', 'GetEntries', 'QueryEntries'],
};
const ALLOWED_BY_SERVICE: Record<string, string[]> = {
  'contact-vault': ['GetSignedTreeHead', 'GetInclusionProof', 'GetConsistencyProof'],
  consent: ['GetContact', 'GetSignedTreeHead', 'GetInclusionProof', 'GetConsistencyProof'],
  dispatch: ['GetContact', 'ResolveRecipients'],
  audit: [],
  anomaly: [],
  identity: [],
  crm: [],
};

const dataMethods = Object.keys(DEFAULT_METHOD_RULES).filter((m) => !(m in INFRASTRUCTURE_METHODS));
const shortName = (m: string): string => m.slice(m.lastIndexOf('/') + 1);
const allowed = (fn: () => unknown): boolean => {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof AccessError && err.code === 'PERMISSION_DENIED') return false;
    throw err;
  }
};

describe('the default permission table', () => {
  it('seeds every vault and audit method named in the design', () => {
    expect(dataMethods.map(shortName).sort()).toEqual(
      [
        'UpsertContact',
        'ImportContacts',
        'GetContact',
        'ListContacts',
        'FindContacts',
        'RevealContact',
        'ResolveRecipients',
        'EraseContact',
        'GetOperation',
        'ExportContact',
        'RotateTenantKey',
        'GetSignedTreeHead',
        'GetInclusionProof',
        'GetConsistencyProof',
        'GetEntries',
        'QueryEntries',
      ].sort(),
    );
  });

  it.each(Object.keys(ALLOWED_BY_ROLE))('role %s reaches exactly its methods (every role × method)', (role) => {
    const reached = dataMethods.filter((m) => allowed(() => authorize(DEFAULT_ACCESS_POLICY, m, operator([role]))));
    expect(reached.map(shortName).sort()).toEqual([...ALLOWED_BY_ROLE[role]!].sort());
  });

  it.each(Object.keys(ALLOWED_BY_SERVICE))(
    'service %s reaches exactly its methods (every service × method)',
    (name) => {
      const reached = dataMethods.filter((m) => allowed(() => authorize(DEFAULT_ACCESS_POLICY, m, service(name))));
      expect(reached.map(shortName).sort()).toEqual([...ALLOWED_BY_SERVICE[name]!].sort());
    },
  );

  it('marks reveal, erase, export and key rotation sensitive with a purpose, and nothing else', () => {
    const sensitive = dataMethods
      .filter((m) => DEFAULT_METHOD_RULES[m]!.sensitive)
      .map(shortName)
      .sort();
    const purpose = dataMethods
      .filter((m) => DEFAULT_METHOD_RULES[m]!.purposeRequired)
      .map(shortName)
      .sort();
    expect(sensitive).toEqual(['EraseContact', 'ExportContact', 'RevealContact', 'RotateTenantKey']);
    expect(purpose).toEqual(sensitive);
  });

  it('denies a method absent from the table to every principal, whatever its roles', () => {
    const everyRole = operator(Object.keys(ALLOWED_BY_ROLE));
    for (const m of [`${V}DropAllContacts`, `${V}revealcontact`, `${A}GetEntries/`, '', '/x.Y/Z']) {
      expect(() => authorize(DEFAULT_ACCESS_POLICY, m, everyRole)).toThrow(
        expect.objectContaining({ reason: 'METHOD_NOT_ALLOWED' }),
      );
      expect(() => authorize(DEFAULT_ACCESS_POLICY, m, service('dispatch'))).toThrow(
        expect.objectContaining({ reason: 'METHOD_NOT_ALLOWED' }),
      );
    }
  });

  it('lets unknown roles and prototype names grant nothing', () => {
    for (const role of ['root', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(permissionsOf(DEFAULT_ACCESS_POLICY, [role]).size).toBe(0);
      expect(() => authorize(DEFAULT_ACCESS_POLICY, `${V}GetContact`, operator([role]))).toThrow(
        expect.objectContaining({ code: 'PERMISSION_DENIED', reason: 'ROLE_NOT_ALLOWED' }),
      );
    }
    expect(() => authorize(DEFAULT_ACCESS_POLICY, '/__proto__', operator(['admin']))).toThrow(
      expect.objectContaining({ reason: 'METHOD_NOT_ALLOWED' }),
    );
  });

  it('lets any authenticated principal use health and reflection', () => {
    for (const m of Object.keys(INFRASTRUCTURE_METHODS)) {
      expect(authorize(DEFAULT_ACCESS_POLICY, m, operator([])).anyAuthenticated).toBe(true);
      expect(authorize(DEFAULT_ACCESS_POLICY, m, service('crm')).anyAuthenticated).toBe(true);
    }
  });

  it('is frozen data', () => {
    expect(Object.isFrozen(DEFAULT_ACCESS_POLICY.methods)).toBe(true);
    expect(Object.isFrozen(DEFAULT_ACCESS_POLICY.roles['dpo'])).toBe(true);
  });
});

describe('definePolicy / withServiceGrants', () => {
  it('grants an extra service on a method without touching others', () => {
    const p = withServiceGrants(DEFAULT_ACCESS_POLICY, { [`${V}UpsertContact`]: ['crm'] });
    expect(authorize(p, `${V}UpsertContact`, service('crm')).permission).toBe('contacts:write');
    expect(() => authorize(p, `${V}ImportContacts`, service('crm'))).toThrow(
      expect.objectContaining({ reason: 'SERVICE_NOT_ALLOWED' }),
    );
    expect(() => authorize(DEFAULT_ACCESS_POLICY, `${V}UpsertContact`, service('crm'))).toThrow();
  });

  it('refuses grants on methods outside the table', () => {
    expect(() => withServiceGrants(DEFAULT_ACCESS_POLICY, { [`${V}DropAll`]: ['crm'] })).toThrow(
      expect.objectContaining({ code: 'ACCESS_POLICY_INVALID' }),
    );
  });

  it.each([
    [
      'a method that is not a full gRPC path',
      {
        methods: { GetContact: { permission: 'x', sensitive: false, purposeRequired: false, services: [] } },
        roles: { r: ['x'] },
      },
    ],
    ['a role permission no method needs', { methods: {}, roles: { r: ['contacts:typo'] } }],
    [
      'a method nobody can call',
      {
        methods: { '/a.B/C': { permission: null, sensitive: false, purposeRequired: false, services: [] } },
        roles: {},
      },
    ],
    [
      'an infrastructure rule with a permission',
      {
        methods: {
          '/a.B/C': { permission: 'x', sensitive: false, purposeRequired: false, services: [], anyAuthenticated: true },
        },
        roles: {},
      },
    ],
  ])('refuses %s', (_name, policy) => {
    expect(() => definePolicy(policy)).toThrow(expect.objectContaining({ code: 'ACCESS_POLICY_INVALID' }));
  });
});
