/**
 * Every call over the real server is counted by method and status name, with its latency; refusals by the
 * access interceptor are counted there too, and in `sealpost_auth_denied_total` by reason.
 */
import * as grpc from '@grpc/grpc-js';
import { AppError, createAccessInterceptor, definePolicy, DEFAULT_METHOD_RULES, DEFAULT_ROLES } from '@sealpost/access';
import { startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { createGrpcServer, unary, type GrpcServer } from '../src';
import { call, clientCredentials, closeAll, loadService, makePki, type Pki } from './helpers';

const ECHO = 'sealpost.testecho.v1.Echo';
const echo = loadService('echo.proto', ECHO);
const policy = definePolicy({
  methods: {
    ...DEFAULT_METHOD_RULES,
    [`/${ECHO}/Say`]: { permission: null, sensitive: false, purposeRequired: false, services: ['tester'] },
    [`/${ECHO}/Fail`]: { permission: null, sensitive: false, purposeRequired: false, services: ['tester'] },
  },
  roles: DEFAULT_ROLES,
});

describe('gRPC server metrics', () => {
  let recorded: TestMetrics;
  let pki: Pki;
  let server: GrpcServer;
  let port: number;
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    // Before the server: its instruments bind to the provider current when it is created.
    recorded = startTestMetrics();
    pki = await makePki(['tester', 'dispatch']);
    server = await createGrpcServer({
      service: 'echo',
      mode: 'test',
      address: '127.0.0.1:0',
      tls: { ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem },
      interceptors: [createAccessInterceptor({ policy, trustDomain: 'sealpost.dev' })],
    });
    server.addService(echo.definition, {
      say: unary(async (req: { text: string }) => ({ text: req.text })),
      slow: unary(async () => ({ text: '' })),
      fail: unary(async () => {
        throw new AppError('UNAVAILABLE', 'STORE_DOWN', 'try again');
      }),
    });
    ({ port } = await server.start());
  });
  afterAll(async () => {
    closeAll(clients);
    server?.forceShutdown();
    await pki?.cleanup();
    await recorded?.shutdown();
  });

  const client = (service: string) => {
    const c = new echo.Client(`localhost:${port}`, clientCredentials(pki.ca.certPem, pki.clients[service]));
    clients.push(c);
    return c;
  };

  it('counts calls by method path and status name, with their duration', async () => {
    const tester = client('tester');
    expect((await call(tester, 'say', { text: 'hi' })).response).toEqual({ text: 'hi' });
    expect((await call(tester, 'say', { text: 'again' })).response).toEqual({ text: 'again' });
    expect((await call(tester, 'fail', { category: 'x' })).error?.code).toBe(grpc.status.UNAVAILABLE);

    const say = { method: `/${ECHO}/Say`, code: 'OK' };
    expect(await recorded.sum('sealpost_grpc_server_requests_total', say)).toBe(2);
    expect(
      await recorded.sum('sealpost_grpc_server_requests_total', { method: `/${ECHO}/Fail`, code: 'UNAVAILABLE' }),
    ).toBe(1);
    const durations = await recorded.points('sealpost_grpc_server_duration_seconds');
    const sayDuration = durations.find((p) => p.attributes['method'] === say.method && p.attributes['code'] === 'OK');
    expect(sayDuration?.value).toMatchObject({ count: 2 });
    expect((sayDuration?.value as { sum: number }).sum).toBeGreaterThan(0);
  });

  it('counts refusals of the access interceptor with their status and reason', async () => {
    // dispatch has a valid certificate but no grant for the test service.
    const refused = await call(client('dispatch'), 'say', { text: 'hi' });
    expect(refused.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(
      await recorded.sum('sealpost_grpc_server_requests_total', { method: `/${ECHO}/Say`, code: 'PERMISSION_DENIED' }),
    ).toBe(1);
    expect(await recorded.points('sealpost_auth_denied_total')).toEqual([
      { attributes: { method: `/${ECHO}/Say`, reason: refused.reason }, value: 1 },
    ]);
    expect(refused.reason).toMatch(/^[A-Z_]+$/);
  });
});
