import { AccessPolicyError } from './errors';

/**
 * What a method needs. The whole table is data (DESIGN "Access control"): method → rule, role → permissions,
 * and a method that is not in the table is denied to everyone.
 */
export interface MethodRule {
  /** Permission an operator's roles must grant; null when no operator may call the method. */
  readonly permission: string | null;
  /** Needs step-up: MFA within the configured window (and a current session version when one is checked). */
  readonly sensitive: boolean;
  /** Needs a purpose code (metadata `x-sealpost-purpose`, optional ticket `x-sealpost-ticket`). */
  readonly purposeRequired: boolean;
  /** Service identities (SPIFFE service names) that may call the method; empty: none. */
  readonly services: readonly string[];
  /** Infrastructure (health, reflection): any authenticated principal, no permission. Never for data methods. */
  readonly anyAuthenticated?: boolean;
}

export interface AccessPolicy {
  readonly methods: Readonly<Record<string, MethodRule>>;
  readonly roles: Readonly<Record<string, readonly string[]>>;
}

const VAULT = '/sealpost.vault.v1.ContactVault';
const AUDIT = '/sealpost.audit.v1.AuditLog';

const rule = (permission: string | null, extra: Partial<Omit<MethodRule, 'permission'>> = {}): MethodRule =>
  Object.freeze({ permission, sensitive: false, purposeRequired: false, services: Object.freeze([]), ...extra });
const services = (...names: string[]): readonly string[] => Object.freeze(names);

/**
 * Methods every authenticated principal may call on every server. Health carries no data; reflection
 * only describes the schema, and sits behind mTLS on the main listener (probes use the health-only one).
 */
export const INFRASTRUCTURE_METHODS: Readonly<Record<string, MethodRule>> = Object.freeze({
  '/grpc.health.v1.Health/Check': rule(null, { anyAuthenticated: true }),
  '/grpc.health.v1.Health/Watch': rule(null, { anyAuthenticated: true }),
  '/grpc.health.v1.Health/List': rule(null, { anyAuthenticated: true }),
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': rule(null, { anyAuthenticated: true }),
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': rule(null, { anyAuthenticated: true }),
});

/**
 * The seed table. Permissions: `contacts:read` is the masked view; `contacts:find` looks a contact up by an
 * address (membership is itself personal data, so it is separate from read); reveal/export/erase/key rotation
 * are sensitive and need a stated purpose; `contacts:resolve` belongs to no role — only `dispatch` resolves
 * addresses for sending. Internal callers outside Sealpost (a CRM) are granted with `withServiceGrants`.
 */
export const DEFAULT_METHOD_RULES: Readonly<Record<string, MethodRule>> = Object.freeze({
  [`${VAULT}/UpsertContact`]: rule('contacts:write'),
  [`${VAULT}/ImportContacts`]: rule('contacts:write'),
  // consent checks a contact exists before an opt-in; dispatch reads masked metadata (locale, time zone).
  [`${VAULT}/GetContact`]: rule('contacts:read', { services: services('consent', 'dispatch') }),
  [`${VAULT}/ListContacts`]: rule('contacts:read'),
  [`${VAULT}/FindContacts`]: rule('contacts:find'),
  [`${VAULT}/RevealContact`]: rule('contacts:reveal', { sensitive: true, purposeRequired: true }),
  [`${VAULT}/ResolveRecipients`]: rule('contacts:resolve', { services: services('dispatch') }),
  [`${VAULT}/EraseContact`]: rule('contacts:erase', { sensitive: true, purposeRequired: true }),
  [`${VAULT}/ExportContact`]: rule('contacts:export', { sensitive: true, purposeRequired: true }),
  // DESIGN lists key rotation with reveal/export/erase: step-up and a stated purpose.
  [`${VAULT}/RotateTenantKey`]: rule('keys:rotate', { sensitive: true, purposeRequired: true }),
  // Polls an erasure or rotation started by the caller; the vault also checks the operation's tenant.
  [`${VAULT}/GetOperation`]: rule('contacts:read'),
  // The vault and consent cite tree heads and inclusion proofs in erasure and consent-proof receipts.
  [`${AUDIT}/GetSignedTreeHead`]: rule('audit:read', { services: services('contact-vault', 'consent') }),
  [`${AUDIT}/GetInclusionProof`]: rule('audit:read', { services: services('contact-vault', 'consent') }),
  [`${AUDIT}/GetConsistencyProof`]: rule('audit:read', { services: services('contact-vault', 'consent') }),
  // Raw ranges cross tenants (the log is one tree for all of them): its own permission, held by no tenant role.
  [`${AUDIT}/GetEntries`]: rule('audit:read-log'),
  [`${AUDIT}/QueryEntries`]: rule('audit:read'),
  ...INFRASTRUCTURE_METHODS,
});

/**
 * Least privilege per role:
 * - admin: runs the tenant — masked contacts, imports, key rotation; no plaintext, no audit reading.
 * - dpo: answers subject rights — find, reveal, export, erase; reads its tenant's audit log.
 * - support: helps one customer at a time — find and reveal (step-up, purpose, audited); no export or erase.
 * - marketer: manages audiences — masked contacts and imports only.
 * - auditor: reads the audit log of its tenant (QueryEntries is tenant-scoped) and tree heads and proofs; sees no
 *   contacts, and no raw entry ranges.
 * - log-verifier: tenant-agnostic — for whoever checks the whole log (platform security, an external verifier's
 *   tooling): tree heads, proofs and raw entry ranges of every tenant (`audit:read-log`, GetEntries) to recompute
 *   the tree. Entries hold ids and codes only, but across all tenants, so no per-tenant role holds it.
 */
export const DEFAULT_ROLES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  admin: Object.freeze(['contacts:read', 'contacts:write', 'keys:rotate']),
  dpo: Object.freeze([
    'contacts:read',
    'contacts:find',
    'contacts:reveal',
    'contacts:export',
    'contacts:erase',
    'audit:read',
  ]),
  support: Object.freeze(['contacts:read', 'contacts:find', 'contacts:reveal']),
  marketer: Object.freeze(['contacts:read', 'contacts:write']),
  auditor: Object.freeze(['audit:read']),
  'log-verifier': Object.freeze(['audit:read', 'audit:read-log']),
});

export const DEFAULT_ACCESS_POLICY: AccessPolicy = Object.freeze({
  methods: DEFAULT_METHOD_RULES,
  roles: DEFAULT_ROLES,
});

const METHOD_PATH = /^\/[a-zA-Z_][\w.]*\.[A-Z]\w*\/[A-Z]\w*$/;

/**
 * Checks a policy is consistent and returns a frozen copy: method paths are full gRPC paths, every role
 * permission is used by some method, no infrastructure rule carries a permission. Throws `ACCESS_POLICY_INVALID`.
 */
export function definePolicy(policy: AccessPolicy): AccessPolicy {
  const used = new Set<string>();
  const methods: Record<string, MethodRule> = {};
  for (const [method, r] of Object.entries(policy.methods)) {
    if (!METHOD_PATH.test(method))
      throw new AccessPolicyError(`method ${method} is not a full gRPC path /pkg.Service/Method`);
    if (r.anyAuthenticated && (r.permission !== null || r.sensitive || r.purposeRequired)) {
      throw new AccessPolicyError(`method ${method}: an infrastructure rule carries no permission, step-up or purpose`);
    }
    if (!r.anyAuthenticated && r.permission === null && r.services.length === 0) {
      throw new AccessPolicyError(`method ${method} is callable by nobody`);
    }
    if (r.permission !== null) used.add(r.permission);
    methods[method] = rule(r.permission, { ...r, services: services(...r.services) });
  }
  const roles: Record<string, readonly string[]> = {};
  for (const [role, permissions] of Object.entries(policy.roles)) {
    for (const permission of permissions) {
      if (!used.has(permission))
        throw new AccessPolicyError(`role ${role} grants ${permission}, which no method needs`);
    }
    roles[role] = Object.freeze([...permissions]);
  }
  return Object.freeze({ methods: Object.freeze(methods), roles: Object.freeze(roles) });
}

/** A copy of `policy` where the named services may also call the given methods (e.g. a CRM may upsert). */
export function withServiceGrants(
  policy: AccessPolicy,
  grants: Readonly<Record<string, readonly string[]>>,
): AccessPolicy {
  const methods: Record<string, MethodRule> = { ...policy.methods };
  for (const [method, names] of Object.entries(grants)) {
    const existing = methods[method];
    if (!existing) throw new AccessPolicyError(`cannot grant services on ${method}: it is not in the table`);
    if (existing.anyAuthenticated) throw new AccessPolicyError(`${method} is infrastructure; nothing to grant`);
    methods[method] = { ...existing, services: [...new Set([...existing.services, ...names])] };
  }
  return definePolicy({ methods, roles: policy.roles });
}

/** The permissions a set of roles grants (unknown roles grant nothing). */
export function permissionsOf(policy: AccessPolicy, roles: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const role of roles) {
    // Own-property lookup: a role named "constructor" or "__proto__" must not reach Object.prototype.
    if (!Object.hasOwn(policy.roles, role)) continue;
    for (const p of policy.roles[role] ?? []) out.add(p);
  }
  return out;
}

/** The rule for a method, or undefined (→ denied). Own properties only. */
export function ruleFor(policy: AccessPolicy, method: string): MethodRule | undefined {
  return Object.hasOwn(policy.methods, method) ? policy.methods[method] : undefined;
}
