import { createHmac, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  AppError,
  assertTenantAccess,
  callAccessOf,
  createAccessInterceptor,
  createOperatorTokenVerifier,
  DEFAULT_ACCESS_POLICY,
  generateCaMaterial,
  certificateAuthorityFrom,
  type AccessDecisionEvent,
  type OperatorPrincipal,
  type Principal,
} from '@sealpost/access';
import * as jose from 'jose';
import { createGrpcServer, unary, type GrpcServer } from '../src';
import { call, clientCredentials, closeAll, loadService, makePki, FIXTURES, type Pki } from './helpers';

const ISSUER = 'https://identity.test';
const AUDIENCE = 'sealpost';
const VAULT = 'sealpost.vault.v1.ContactVault';
const vault = loadService('vault_fixture.proto', VAULT);

interface Keys {
  ed: jose.GenerateKeyPairResult;
  es: jose.GenerateKeyPairResult;
  jwks: jose.JSONWebKeySet;
}

async function makeKeys(): Promise<Keys> {
  const ed = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const es = await jose.generateKeyPair('ES256', { extractable: true });
  const edJwk = { ...(await jose.exportJWK(ed.publicKey)), kid: 'ed1', alg: 'EdDSA', use: 'sig' };
  const esJwk = { ...(await jose.exportJWK(es.publicKey)), kid: 'es1', alg: 'ES256', use: 'sig' };
  return { ed, es, jwks: { keys: [edJwk, esJwk] } };
}

const now = (): number => Math.floor(Date.now() / 1000);

/** A well-formed access token; every field can be overridden to build the bad ones. */
async function token(
  keys: Keys,
  claims: Record<string, unknown> = {},
  header: Partial<jose.JWTHeaderParameters> = {},
): Promise<string> {
  const t = now();
  return new jose.SignJWT({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'op-1',
    tenant: 't1',
    roles: ['support'],
    amr: ['pwd', 'mfa'],
    auth_time: t,
    sv: 1,
    iat: t,
    exp: t + 120,
    jti: randomUUID(),
    ...claims,
  })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'ed1', ...header })
    .sign(keys.ed.privateKey);
}

const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('access control over real gRPC with mutual TLS', () => {
  let pki: Pki;
  let keys: Keys;
  let server: GrpcServer;
  let port: number;
  const events: AccessDecisionEvent[] = [];
  const seen: { method: string; principal: Principal; purpose?: string; authorization: number }[] = [];
  const sessionVersion = new Map<string, number>();
  const contacts = new Map([
    ['c1', { tenantId: 't1', contactId: 'c1', email: 'alice@example.com' }],
    ['c2', { tenantId: 't2', contactId: 'c2', email: 'bob@example.com' }],
  ]);
  const clients: grpc.Client[] = [];

  const load = (id: string) => {
    const c = contacts.get(id);
    if (!c) throw new AppError('NOT_FOUND', 'CONTACT_NOT_FOUND', 'contact not found');
    return c;
  };
  const record = (method: string, ctx: { access: ReturnType<typeof callAccessOf>; metadata: grpc.Metadata }) =>
    seen.push({
      method,
      principal: ctx.access.principal,
      purpose: ctx.access.purpose?.code,
      authorization: ctx.metadata.get('authorization').length,
    });

  beforeAll(async () => {
    pki = await makePki(['dispatch', 'consent', 'cli']);
    keys = await makeKeys();
    const verifier = await createOperatorTokenVerifier({
      mode: 'production',
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: keys.jwks },
    });
    server = await createGrpcServer({
      service: 'contact-vault',
      mode: 'test',
      address: '127.0.0.1:0',
      tls: { ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem },
      interceptors: [
        createAccessInterceptor({
          policy: DEFAULT_ACCESS_POLICY,
          trustDomain: 'sealpost.dev',
          verifier,
          sessionVersions: { current: async (p: OperatorPrincipal) => sessionVersion.get(p.subject) ?? 1 },
          onDecision: (e) => events.push(e),
        }),
      ],
      reflection: { protoFiles: ['vault_fixture.proto'], includeDirs: [FIXTURES] },
    });
    server.addService(vault.definition, {
      getContact: unary(async (req: { contactId: string }, ctx) => {
        record('GetContact', ctx);
        const c = load(req.contactId);
        assertTenantAccess(ctx.principal, c.tenantId);
        return { tenantId: c.tenantId, contactId: c.contactId, maskedEmail: 'a***@example.com' };
      }),
      revealContact: unary(async (req: { contactId: string }, ctx) => {
        record('RevealContact', ctx);
        const c = load(req.contactId);
        assertTenantAccess(ctx.principal, c.tenantId);
        return { ...c };
      }),
      resolveRecipients: unary(async (req: { contactId: string }, ctx) => {
        record('ResolveRecipients', ctx);
        return { ...load(req.contactId) };
      }),
      upsertContact: unary(async (_req, ctx) => {
        record('UpsertContact', ctx);
        return {};
      }),
      dropAllContacts: unary(async (_req, ctx) => {
        record('DropAllContacts', ctx);
        return {};
      }),
    });
    ({ port } = await server.start());
  });

  afterAll(async () => {
    closeAll(clients);
    server?.forceShutdown();
    await pki?.cleanup();
  });

  beforeEach(() => {
    events.length = 0;
    seen.length = 0;
  });

  const clientAs = (service?: string, caPem = pki.ca.certPem, cert = service ? pki.clients[service] : undefined) => {
    const c = new vault.Client(`localhost:${port}`, clientCredentials(caPem, cert));
    clients.push(c);
    return c;
  };
  const reveal = { purpose: 'FRAUD_INVESTIGATION' };

  describe('services (mTLS identity)', () => {
    it('lets dispatch resolve recipients and hands the handler its SPIFFE identity', async () => {
      const r = await call(clientAs('dispatch'), 'resolveRecipients', { tenantId: 't1', contactId: 'c1' });
      expect(r.error).toBeUndefined();
      expect(r.response).toMatchObject({ email: 'alice@example.com' });
      expect(seen[0]?.principal).toEqual({
        kind: 'service',
        service: 'dispatch',
        trustDomain: 'sealpost.dev',
        spiffeId: 'spiffe://sealpost.dev/dispatch',
      });
      expect(events).toEqual([
        expect.objectContaining({
          method: `/${VAULT}/ResolveRecipients`,
          decision: 'allow',
          principalId: 'spiffe://sealpost.dev/dispatch',
        }),
      ]);
    });

    it('refuses ResolveRecipients to any other service (PERMISSION_DENIED SERVICE_NOT_ALLOWED)', async () => {
      const r = await call(clientAs('consent'), 'resolveRecipients', { tenantId: 't1', contactId: 'c1' });
      expect(r.error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(r.reason).toBe('SERVICE_NOT_ALLOWED');
      expect(seen).toHaveLength(0);
    });

    it('refuses a connection without a client certificate before any handler runs', async () => {
      const r = await call(clientAs(undefined), 'getContact', { tenantId: 't1', contactId: 'c1' });
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(seen).toHaveLength(0);
    });

    it('refuses a method that is not in the table to services and to every operator role', async () => {
      const asService = await call(clientAs('dispatch'), 'dropAllContacts', { tenantId: 't1' });
      expect(asService.error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(asService.reason).toBe('METHOD_NOT_ALLOWED');
      for (const role of ['admin', 'dpo', 'support', 'marketer', 'auditor']) {
        const r = await call(
          clientAs('cli'),
          'dropAllContacts',
          { tenantId: 't1' },
          {
            token: await token(keys, { roles: [role] }),
            metadata: { 'x-sealpost-purpose': 'FRAUD_INVESTIGATION' },
          },
        );
        expect([role, r.error?.code, r.reason]).toEqual([role, grpc.status.PERMISSION_DENIED, 'METHOD_NOT_ALLOWED']);
      }
      expect(seen).toHaveLength(0);
    });
  });

  describe('operators (bearer token over mTLS)', () => {
    it('reveals with role, fresh MFA and a purpose; the handler sees the operator and not the token', async () => {
      const r = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys),
          metadata: { 'x-sealpost-purpose': 'SUPPORT_REQUEST', 'x-sealpost-ticket': 'SUP-1234' },
        },
      );
      expect(r.error).toBeUndefined();
      expect(r.response).toMatchObject({ email: 'alice@example.com' });
      expect(seen[0]).toMatchObject({
        purpose: 'SUPPORT_REQUEST',
        authorization: 0,
        principal: { kind: 'operator', subject: 'op-1', tenant: 't1', roles: ['support'], via: { service: 'cli' } },
      });
      expect(events).toEqual([
        {
          method: `/${VAULT}/RevealContact`,
          decision: 'allow',
          reason: 'OK',
          principalKind: 'operator',
          principalId: 'op-1',
          tenant: 't1',
          purpose: 'SUPPORT_REQUEST',
        },
      ]);
    });

    it('accepts ES256 tokens too', async () => {
      const es = await new jose.SignJWT({ tenant: 't1', roles: ['marketer'], amr: ['pwd'] })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'es1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject('op-2')
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(keys.es.privateKey);
      const r = await call(clientAs('cli'), 'getContact', { tenantId: 't1', contactId: 'c1' }, { token: es });
      expect(r.error).toBeUndefined();
      expect(r.response).toMatchObject({ maskedEmail: 'a***@example.com' });
    });

    const badTokens: [string, (k: Keys) => Promise<string>, string][] = [
      [
        'an expired token',
        (k) => token(k, { iat: now() - 400, exp: now() - 100, auth_time: now() - 400 }),
        'TOKEN_EXPIRED',
      ],
      [
        'alg: none',
        async () =>
          `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'op-1', tenant: 't1', roles: ['dpo'], iat: now(), exp: now() + 60 })}.`,
        'TOKEN_INVALID',
      ],
      [
        'HS256 signed with the public key (algorithm confusion)',
        async (k) => {
          const spki = await jose.exportSPKI(k.es.publicKey);
          const head = b64({ alg: 'HS256', typ: 'at+jwt', kid: 'es1' });
          const body = b64({
            iss: ISSUER,
            aud: AUDIENCE,
            sub: 'op-1',
            tenant: 't1',
            roles: ['dpo'],
            amr: ['mfa'],
            auth_time: now(),
            iat: now(),
            exp: now() + 60,
          });
          const sig = createHmac('sha256', spki).update(`${head}.${body}`).digest('base64url');
          return `${head}.${body}.${sig}`;
        },
        'TOKEN_INVALID',
      ],
      ['a wrong audience', (k) => token(k, { aud: 'someone-else' }), 'TOKEN_INVALID'],
      ['a wrong issuer', (k) => token(k, { iss: 'https://evil.test' }), 'TOKEN_INVALID'],
      ['a wrong token type (an ID token)', (k) => token(k, {}, { typ: 'JWT' }), 'TOKEN_INVALID'],
      ['a lifetime over 5 minutes', (k) => token(k, { exp: now() + 3600 }), 'TOKEN_INVALID'],
      ['no tenant claim', (k) => token(k, { tenant: undefined }), 'TOKEN_INVALID'],
      [
        'a key the issuer never published',
        async () => {
          const other = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
          return new jose.SignJWT({ tenant: 't1', roles: ['dpo'] })
            .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'ed1' })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setSubject('op-1')
            .setIssuedAt()
            .setExpirationTime('1m')
            .sign(other.privateKey);
        },
        'TOKEN_INVALID',
      ],
      ['garbage', async () => 'not-a-jwt', 'TOKEN_INVALID'],
    ];

    it.each(badTokens)('refuses %s with UNAUTHENTICATED', async (_name, make, reason) => {
      const r = await call(
        clientAs('cli'),
        'getContact',
        { tenantId: 't1', contactId: 'c1' },
        { token: await make(keys) },
      );
      expect(r.error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(r.reason).toBe(reason);
      expect(seen).toHaveLength(0);
      expect(events).toEqual([expect.objectContaining({ decision: 'deny', reason })]);
    });

    it('refuses a request naming another tenant before the handler runs', async () => {
      const r = await call(
        clientAs('cli'),
        'getContact',
        { tenantId: 't2', contactId: 'c2' },
        { token: await token(keys) },
      );
      expect(r.error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(r.reason).toBe('TENANT_MISMATCH');
      expect(seen).toHaveLength(0);
      expect(events).toEqual([
        expect.objectContaining({ decision: 'deny', reason: 'TENANT_MISMATCH', principalId: 'op-1', tenant: 't1' }),
      ]);
    });

    it("refuses another tenant's object even when the request claims the caller's tenant", async () => {
      const r = await call(
        clientAs('cli'),
        'getContact',
        { tenantId: 't1', contactId: 'c2' },
        { token: await token(keys) },
      );
      expect(r.error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(r.reason).toBe('TENANT_MISMATCH');
      expect(r.error?.details).not.toContain('bob');
    });

    it('refuses a sensitive call without MFA, and with MFA older than the step-up window', async () => {
      const noMfa = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys, { amr: ['pwd'] }),
          metadata: { 'x-sealpost-purpose': 'FRAUD_INVESTIGATION' },
        },
      );
      expect([noMfa.error?.code, noMfa.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'STEP_UP_REQUIRED']);
      const stale = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys, { auth_time: now() - 600 }),
          metadata: { 'x-sealpost-purpose': 'FRAUD_INVESTIGATION' },
        },
      );
      expect([stale.error?.code, stale.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'STEP_UP_REQUIRED']);
      expect(seen).toHaveLength(0);
    });

    it('refuses a sensitive call from a session that a lock or role change has revoked', async () => {
      sessionVersion.set('op-locked', 2);
      const r = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys, { sub: 'op-locked', sv: 1 }),
          metadata: reveal && { 'x-sealpost-purpose': 'FRAUD_INVESTIGATION' },
        },
      );
      expect([r.error?.code, r.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'SESSION_REVOKED']);
    });

    it('refuses a role without the permission (a marketer cannot reveal)', async () => {
      const r = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys, { roles: ['marketer'] }),
          metadata: { 'x-sealpost-purpose': 'FRAUD_INVESTIGATION' },
        },
      );
      expect([r.error?.code, r.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'ROLE_NOT_ALLOWED']);
    });

    it('refuses an operator on a service-only method (no role resolves recipients)', async () => {
      const r = await call(
        clientAs('cli'),
        'resolveRecipients',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys, { roles: ['admin', 'dpo', 'support', 'marketer', 'auditor'] }),
        },
      );
      expect([r.error?.code, r.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'ROLE_NOT_ALLOWED']);
    });

    it('requires a purpose code and refuses free text without echoing it', async () => {
      const missing = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        { token: await token(keys) },
      );
      expect([missing.error?.code, missing.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'PURPOSE_REQUIRED']);
      const freeText = 'customer bob@example.com called about his order';
      const r = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys),
          metadata: { 'x-sealpost-purpose': freeText },
        },
      );
      expect([r.error?.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'PURPOSE_INVALID']);
      expect(r.error?.details).toContain('purpose');
      expect(r.error?.details).not.toContain('bob');
      const badTicket = await call(
        clientAs('cli'),
        'revealContact',
        { tenantId: 't1', contactId: 'c1' },
        {
          token: await token(keys),
          metadata: { 'x-sealpost-purpose': 'SUPPORT_REQUEST', 'x-sealpost-ticket': 'bob@example.com' },
        },
      );
      expect([badTicket.error?.code, badTicket.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'TICKET_INVALID']);
      expect(JSON.stringify(events)).not.toContain('bob');
      expect(seen).toHaveLength(0);
    });
  });

  describe('trust', () => {
    it('refuses a client certificate from another trust domain that the bundle happens to trust', async () => {
      const otherCa = await certificateAuthorityFrom(
        await generateCaMaterial({ commonName: 'Other CA', trustDomain: 'other.example' }),
        'other.example',
      );
      const otherLeaf = await otherCa.issue({ service: 'dispatch', usage: 'client' });
      const bundled = await createGrpcServer({
        service: 'contact-vault',
        mode: 'test',
        address: '127.0.0.1:0',
        tls: { ca: pki.ca.certPem + otherCa.certPem, cert: pki.server.certPem, key: pki.server.keyPem },
        interceptors: [
          createAccessInterceptor({
            policy: DEFAULT_ACCESS_POLICY,
            trustDomain: 'sealpost.dev',
            onDecision: (e) => events.push(e),
          }),
        ],
      });
      bundled.addService(vault.definition, { resolveRecipients: unary(async () => ({})) });
      const p = await bundled.start();
      const client = new vault.Client(`localhost:${p.port}`, clientCredentials(pki.ca.certPem, otherLeaf));
      try {
        const r = await call(client, 'resolveRecipients', { tenantId: 't1', contactId: 'c1' });
        expect([r.error?.code, r.reason]).toEqual([grpc.status.UNAUTHENTICATED, 'TRUST_DOMAIN_MISMATCH']);
      } finally {
        client.close();
        bundled.forceShutdown();
      }
    });

    it('in production refuses to start with a trust bundle that contains the dev CA', async () => {
      await expect(
        createGrpcServer({
          service: 'contact-vault',
          mode: 'production',
          address: '127.0.0.1:0',
          tls: { ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem },
        }),
      ).rejects.toMatchObject({
        code: 'DEV_CA_IN_PRODUCTION',
        message: expect.stringContaining('SEALPOST_TLS_CA_FILE'),
      });
    });

    it('a production server (own CA) refuses a client certificate minted by the dev CA', async () => {
      const prodCa = await certificateAuthorityFrom(
        await generateCaMaterial({ commonName: 'Example Prod CA', trustDomain: 'prod.example' }),
        'prod.example',
      );
      const prodServer = await prodCa.issue({ service: 'contact-vault' });
      const prod = await createGrpcServer({
        service: 'contact-vault',
        mode: 'production',
        address: '127.0.0.1:0',
        tls: { ca: prodCa.certPem, cert: prodServer.certPem, key: prodServer.keyPem },
        interceptors: [createAccessInterceptor({ policy: DEFAULT_ACCESS_POLICY, trustDomain: 'prod.example' })],
      });
      let handled = 0;
      prod.addService(vault.definition, { resolveRecipients: unary(async () => (handled++, {})) });
      const p = await prod.start();
      const devLeaf = pki.clients['dispatch'];
      const prodLeaf = await prodCa.issue({ service: 'dispatch', usage: 'client' });
      const devClient = new vault.Client(`localhost:${p.port}`, clientCredentials(prodCa.certPem, devLeaf));
      const prodClient = new vault.Client(`localhost:${p.port}`, clientCredentials(prodCa.certPem, prodLeaf));
      try {
        const refused = await call(devClient, 'resolveRecipients', { tenantId: 't1', contactId: 'c1' });
        expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
        expect(handled).toBe(0);
        const ok = await call(prodClient, 'resolveRecipients', { tenantId: 't1', contactId: 'c1' });
        expect(ok.error).toBeUndefined();
        expect(handled).toBe(1);
      } finally {
        devClient.close();
        prodClient.close();
        prod.forceShutdown();
      }
    });
  });

  describe('listener with optional client certificates', () => {
    let optional: GrpcServer;
    let optionalPort: number;
    beforeAll(async () => {
      optional = await createGrpcServer({
        service: 'contact-vault',
        mode: 'test',
        address: '127.0.0.1:0',
        tls: { ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem, requireClientCert: false },
        interceptors: [
          createAccessInterceptor({
            policy: DEFAULT_ACCESS_POLICY,
            trustDomain: 'sealpost.dev',
            verifier: await createOperatorTokenVerifier({
              mode: 'test',
              issuer: ISSUER,
              audience: AUDIENCE,
              jwks: { keys: keys.jwks },
            }),
            operatorsWithoutClientCert: true,
          }),
        ],
      });
      optional.addService(vault.definition, {
        getContact: unary(async () => ({ maskedEmail: 'a***@example.com' })),
        resolveRecipients: unary(async () => ({})),
      });
      ({ port: optionalPort } = await optional.start());
    });
    afterAll(() => optional?.forceShutdown());

    it('refuses a service call without a client certificate with UNAUTHENTICATED', async () => {
      const c = new vault.Client(`localhost:${optionalPort}`, clientCredentials(pki.ca.certPem));
      clients.push(c);
      const r = await call(c, 'resolveRecipients', { tenantId: 't1', contactId: 'c1' });
      expect([r.error?.code, r.reason]).toEqual([grpc.status.UNAUTHENTICATED, 'PEER_CERT_MISSING']);
    });

    it('accepts an operator token over TLS without a client certificate when configured to', async () => {
      const c = new vault.Client(`localhost:${optionalPort}`, clientCredentials(pki.ca.certPem));
      clients.push(c);
      const r = await call(c, 'getContact', { tenantId: 't1', contactId: 'c1' }, { token: await token(keys) });
      expect(r.error).toBeUndefined();
      const dispatch = new vault.Client(
        `localhost:${optionalPort}`,
        clientCredentials(pki.ca.certPem, pki.clients['dispatch']),
      );
      clients.push(dispatch);
      expect((await call(dispatch, 'resolveRecipients', { tenantId: 't1', contactId: 'c1' })).error).toBeUndefined();
    });
  });
});
