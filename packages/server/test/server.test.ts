import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  AppError,
  createAccessInterceptor,
  DEFAULT_METHOD_RULES,
  DEFAULT_ROLES,
  definePolicy,
  principalId,
} from '@sealpost/access';
import { writeDevTlsFiles } from '@sealpost/access';
import {
  createGrpcServer,
  createIdempotency,
  drainOnSignals,
  MemoryIdempotencyStore,
  requestIdOf,
  unary,
  type GrpcServer,
} from '../src';
import { call, clientCredentials, closeAll, FIXTURES, loadService, makePki, type Pki } from './helpers';

const ECHO = 'sealpost.testecho.v1.Echo';
const VAULT = 'sealpost.vault.v1.ContactVault';
const echo = loadService('echo.proto', ECHO);
const vault = loadService('vault_fixture.proto', VAULT);

const healthPkg = grpc.loadPackageDefinition(
  protoLoader.loadSync(require.resolve('grpc-health-check/proto/health/v1/health.proto'), { enums: String }),
) as unknown as { grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } } };
const reflectionPkg = grpc.loadPackageDefinition(
  protoLoader.loadSync(
    path.join(
      path.dirname(require.resolve('@grpc/reflection/package.json')),
      'build/proto/grpc/reflection/v1/reflection.proto',
    ),
  ),
) as unknown as {
  grpc: { reflection: { v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } };
};

// The test service is not in the production table; the test policy adds it for one service identity.
const policy = definePolicy({
  methods: {
    ...DEFAULT_METHOD_RULES,
    [`/${ECHO}/Say`]: { permission: null, sensitive: false, purposeRequired: false, services: ['tester'] },
    [`/${ECHO}/Slow`]: { permission: null, sensitive: false, purposeRequired: false, services: ['tester'] },
    [`/${ECHO}/Fail`]: { permission: null, sensitive: false, purposeRequired: false, services: ['tester'] },
    [`/${VAULT}/UpsertContact`]: { ...DEFAULT_METHOD_RULES[`/${VAULT}/UpsertContact`]!, services: ['tester'] },
  },
  roles: DEFAULT_ROLES,
});

function healthCheck(client: grpc.Client, service: string): Promise<{ status?: string; code?: number }> {
  return new Promise((resolve) => {
    (client as unknown as { check: (...args: unknown[]) => void }).check(
      { service },
      { deadline: Date.now() + 3000 },
      (err: grpc.ServiceError | null, res?: { status: string }) =>
        resolve(err ? { code: err.code } : { status: res?.status }),
    );
  });
}

describe('createGrpcServer', () => {
  let pki: Pki;
  let server: GrpcServer;
  let ports: { port: number; healthPort?: number };
  const clients: grpc.Client[] = [];
  const slow: { started: number; aborted: unknown[] } = { started: 0, aborted: [] };
  let upserts = 0;
  const idempotency = createIdempotency({ store: new MemoryIdempotencyStore({ maxEntries: 100 }), ttlMs: 60_000 });

  const start = async (): Promise<GrpcServer> => {
    const s = await createGrpcServer({
      service: 'echo',
      mode: 'test',
      address: '127.0.0.1:0',
      tls: { ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem },
      health: { address: '127.0.0.1:0' },
      interceptors: [createAccessInterceptor({ policy, trustDomain: 'sealpost.dev' })],
      reflection: { protoFiles: ['echo.proto', 'vault_fixture.proto'], includeDirs: [FIXTURES] },
    });
    s.addService(echo.definition, {
      say: unary(async (req: { text: string }) => ({ text: req.text })),
      slow: unary(async (req: { delayMs: number }, ctx) => {
        slow.started++;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, req.delayMs);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            slow.aborted.push(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        });
        return { text: `slept ${req.delayMs}` };
      }),
      fail: unary(async (req: { category: string }) => {
        if (req.category === '') throw new Error('db write failed for alice@example.com at /srv/app.ts:12');
        throw new AppError(req.category as 'NOT_FOUND', 'CONTACT_NOT_FOUND', 'contact not found');
      }),
    });
    s.addService(vault.definition, {
      upsertContact: unary(async (req: { tenantId: string; contactId: string; requestId: string }, ctx) =>
        idempotency.run(
          { principal: principalId(ctx.principal), method: ctx.method, requestId: requestIdOf(ctx.metadata, req) },
          req,
          async () => ({ tenantId: req.tenantId, contactId: req.contactId, version: ++upserts }),
        ),
      ),
    });
    return s;
  };

  beforeAll(async () => {
    pki = await makePki(['tester', 'dispatch']);
    server = await start();
    ports = await server.start();
  });
  afterAll(async () => {
    closeAll(clients);
    server?.forceShutdown();
    await pki?.cleanup();
  });

  const tester = <T extends grpc.Client>(
    Ctor: new (a: string, c: grpc.ChannelCredentials) => T,
    port = ports.port,
  ): T => {
    const c = new Ctor(`localhost:${port}`, clientCredentials(pki.ca.certPem, pki.clients['tester']));
    clients.push(c);
    return c;
  };
  const plaintext = <T extends grpc.Client>(
    Ctor: new (a: string, c: grpc.ChannelCredentials) => T,
    port: number,
  ): T => {
    const c = new Ctor(`localhost:${port}`, grpc.credentials.createInsecure());
    clients.push(c);
    return c;
  };

  describe('health', () => {
    it('answers SERVING on the health-only listener without any client certificate', async () => {
      const h = plaintext(healthPkg.grpc.health.v1.Health, ports.healthPort!);
      expect(await healthCheck(h, '')).toEqual({ status: 'SERVING' });
      expect(await healthCheck(h, ECHO)).toEqual({ status: 'SERVING' });
      expect(await healthCheck(h, VAULT)).toEqual({ status: 'SERVING' });
      expect(await healthCheck(h, 'sealpost.nope.v1.Nope')).toEqual({ code: grpc.status.NOT_FOUND });
    });

    it('serves nothing but health on the health-only listener', async () => {
      const e = plaintext(echo.Client, ports.healthPort!);
      const r = await call(e, 'say', { text: 'hi' });
      expect(r.error?.code).toBe(grpc.status.UNIMPLEMENTED);
    });

    it('serves health on the main listener too, to authenticated peers', async () => {
      expect(await healthCheck(tester(healthPkg.grpc.health.v1.Health), ECHO)).toEqual({ status: 'SERVING' });
    });

    it('streams status changes to Watch', async () => {
      const h = plaintext(healthPkg.grpc.health.v1.Health, ports.healthPort!);
      const stream = (h as unknown as { watch: (req: object) => grpc.ClientReadableStream<{ status: string }> }).watch({
        service: ECHO,
      });
      const statuses: string[] = [];
      const errors: number[] = [];
      stream.on('error', (e: grpc.ServiceError) => errors.push(e.code));
      await new Promise<void>((resolve) => {
        stream.on('data', (m: { status: string }) => {
          statuses.push(m.status);
          if (statuses.length === 1) server.setServing('NOT_SERVING', ECHO);
          if (statuses.length === 2) server.setServing('SERVING', ECHO);
          if (statuses.length === 3) resolve();
        });
      });
      stream.cancel();
      expect(statuses).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
      await new Promise((resolve) => setImmediate(resolve));
      expect(errors).toEqual([grpc.status.CANCELLED]);
    });
  });

  it('reflection lists the services (what grpcurl relies on)', async () => {
    const r = tester(reflectionPkg.grpc.reflection.v1.ServerReflection);
    const stream = (
      r as unknown as {
        serverReflectionInfo: () => grpc.ClientDuplexStream<
          object,
          { listServicesResponse?: { service: { name: string }[] } }
        >;
      }
    ).serverReflectionInfo();
    const names = await new Promise<string[]>((resolve, reject) => {
      stream.on('data', (m: { listServicesResponse?: { service: { name: string }[] } }) =>
        resolve((m.listServicesResponse?.service ?? []).map((s) => s.name)),
      );
      stream.on('error', reject);
      stream.write({ listServices: '*' });
    });
    stream.end();
    expect(names).toEqual(expect.arrayContaining([ECHO, VAULT, 'grpc.health.v1.Health']));
  });

  it('honours the deadline: the client gets DEADLINE_EXCEEDED and the handler is aborted', async () => {
    slow.aborted.length = 0;
    const startedAt = Date.now();
    const r = await call(tester(echo.Client), 'slow', { delayMs: 10_000 }, { deadlineMs: 300 });
    expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - startedAt).toBeLessThan(3000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(slow.aborted).toHaveLength(1);
    expect((slow.aborted[0] as AppError).code).toMatch(/DEADLINE_EXCEEDED|CANCELLED/);
  });

  it('aborts the handler when the client cancels', async () => {
    slow.aborted.length = 0;
    const c = tester(echo.Client) as unknown as { slow: (req: object, cb: () => void) => grpc.ClientUnaryCall };
    const pending = c.slow({ delayMs: 10_000 }, () => undefined) as grpc.ClientUnaryCall;
    await new Promise((resolve) => setTimeout(resolve, 200));
    pending.cancel();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(slow.aborted).toHaveLength(1);
    expect((slow.aborted[0] as AppError).reason).toBe('CALL_CANCELLED');
  });

  describe('errors', () => {
    it.each([
      ['NOT_FOUND', grpc.status.NOT_FOUND],
      ['INVALID_ARGUMENT', grpc.status.INVALID_ARGUMENT],
      ['FAILED_PRECONDITION', grpc.status.FAILED_PRECONDITION],
      ['ALREADY_EXISTS', grpc.status.ALREADY_EXISTS],
      ['UNAVAILABLE', grpc.status.UNAVAILABLE],
    ])('maps AppError %s to its status with the reason in x-sealpost-reason', async (category, code) => {
      const r = await call(tester(echo.Client), 'fail', { category });
      expect(r.error?.code).toBe(code);
      expect(r.error?.details).toBe('contact not found');
      expect(r.reason).toBe('CONTACT_NOT_FOUND');
    });

    it('turns an unknown error into a generic INTERNAL: no message, no stack, no personal data', async () => {
      const r = await call(tester(echo.Client), 'fail', { category: '' });
      expect(r.error?.code).toBe(grpc.status.INTERNAL);
      expect(r.error?.details).toBe('internal error');
      expect(r.reason).toBe('INTERNAL');
      expect(JSON.stringify(r.error?.metadata.getMap())).not.toMatch(/alice|app\.ts/);
    });
  });

  describe('idempotent mutations', () => {
    const upsert = (req: object, metadata?: Record<string, string>) =>
      call<{ version: number }>(
        tester(vault.Client),
        'upsertContact',
        { tenantId: 't1', ...req },
        metadata ? { metadata } : {},
      );

    it('returns the first response to a retry with the same request id (field or metadata)', async () => {
      const first = await upsert({ contactId: 'c1', requestId: 'req-0001-abcdef' });
      const retry = await upsert({ contactId: 'c1', requestId: 'req-0001-abcdef' });
      const viaMetadata = await upsert({ contactId: 'c1' }, { 'x-sealpost-request-id': 'req-0001-abcdef' });
      expect(first.response?.version).toBeGreaterThan(0);
      expect(retry.response).toEqual(first.response);
      expect(viaMetadata.response).toEqual(first.response);
      const other = await upsert({ contactId: 'c1', requestId: 'req-0002-abcdef' });
      expect(other.response?.version).toBe(first.response!.version + 1);
    });

    it('refuses a request id reused for a different request', async () => {
      await upsert({ contactId: 'c1', requestId: 'req-0003-abcdef' });
      const r = await upsert({ contactId: 'c2', requestId: 'req-0003-abcdef' });
      expect([r.error?.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'REQUEST_ID_REUSED']);
    });

    it('refuses a malformed request id', async () => {
      const r = await upsert({ contactId: 'c1', requestId: 'x' });
      expect([r.error?.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'REQUEST_ID_INVALID']);
    });
  });

  describe('drain', () => {
    it('reports NOT_SERVING, finishes in-flight calls, refuses new ones, then stops', async () => {
      const s = await start();
      const p = await s.start();
      const c = tester(echo.Client, p.port);
      const h = plaintext(healthPkg.grpc.health.v1.Health, p.healthPort!);
      expect(await healthCheck(h, '')).toEqual({ status: 'SERVING' });

      const inFlight = call(c, 'slow', { delayMs: 700 });
      await new Promise((resolve) => setTimeout(resolve, 150));
      const drained = s.drain(5000);
      let drainDone = false;
      void drained.then(() => (drainDone = true));
      await new Promise((resolve) => setTimeout(resolve, 50));

      expect(await healthCheck(h, '')).toEqual({ status: 'NOT_SERVING' });
      expect(await healthCheck(h, ECHO)).toEqual({ status: 'NOT_SERVING' });
      const late = await call(tester(echo.Client, p.port), 'say', { text: 'late' }, { deadlineMs: 1000 });
      expect(late.error).toBeDefined();
      expect(drainDone).toBe(false);

      expect(await inFlight).toEqual({ response: { text: 'slept 700' } });
      await drained;
      expect(drainDone).toBe(true);
    });

    it('forces the stop when in-flight calls outlive the timeout', async () => {
      const s = await start();
      const p = await s.start();
      const inFlight = call(tester(echo.Client, p.port), 'slow', { delayMs: 10_000 }, { deadlineMs: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 150));
      const startedAt = Date.now();
      await s.drain(300);
      expect(Date.now() - startedAt).toBeLessThan(3000);
      const r = await inFlight;
      expect(r.error?.code).toBeDefined();
      expect(r.response).toBeUndefined();
    });
  });

  it('loads TLS from files (re-read for hot reload) and drains on a termination signal', async () => {
    const files = await writeDevTlsFiles({ dir: pki.dir, mode: 'test', service: 'contact-vault' });
    const s = await createGrpcServer({
      service: 'echo',
      mode: 'test',
      address: '127.0.0.1:0',
      tls: { ...files, refreshIntervalMs: 1000 },
    });
    s.addService(echo.definition, { say: unary(async (req: { text: string }) => ({ text: req.text })) });
    const p = await s.start();
    const c = tester(echo.Client, p.port);
    expect(await call(c, 'say', { text: 'from files' })).toEqual({ response: { text: 'from files' } });
    const drained = new Promise<void>((resolve) => {
      const remove = drainOnSignals([s], {
        timeoutMs: 1000,
        signals: ['SIGUSR2'],
        onDrained: () => (remove(), resolve()),
      });
    });
    process.emit('SIGUSR2', 'SIGUSR2');
    await drained;
    const after = await call(c, 'say', { text: 'late' }, { deadlineMs: 1000 });
    expect(after.error).toBeDefined();
  });
});
