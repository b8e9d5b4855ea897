import path from 'node:path';
import { ConfigError } from './errors';
import { loadConfig } from './load-config';
import { SERVICE_NAMES } from './services';
import { DEV_JWT_ISSUER } from './settings';

/** Runs loadConfig expecting a ConfigError and returns its problem lines. */
function problemsOf(env: Record<string, string | undefined>, service: (typeof SERVICE_NAMES)[number] = 'dispatch') {
  try {
    loadConfig(service, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    return (error as ConfigError).problems;
  }
  throw new Error('expected loadConfig to throw ConfigError');
}

describe('loadConfig defaults (embedded)', () => {
  it('gives a complete embedded configuration from an empty environment', () => {
    const config = loadConfig('contact-vault', {});
    const dataDir = path.resolve('./.sealpost');
    expect(config.mode).toBe('embedded');
    expect(config.dataDir).toBe(dataDir);
    expect(config.trustDomain).toBe('sealpost.dev');
    expect(config.spiffeId).toBe('spiffe://sealpost.dev/contact-vault');
    expect(config.tls).toEqual({
      caFile: path.join(dataDir, 'dev-ca', 'ca.pem'),
      certFile: path.join(dataDir, 'dev-ca', 'contact-vault.pem'),
      keyFile: path.join(dataDir, 'dev-ca', 'contact-vault-key.pem'),
      dev: true,
    });
    expect(config.grpc.listen).toBe('127.0.0.1:7401');
    expect(config.grpc.health).toBe('127.0.0.1:7501');
    expect(config.bus).toEqual({ kind: 'embedded', file: path.join(dataDir, 'bus.sqlite') });
    expect(config.store).toEqual({ kind: 'sqlite', file: path.join(dataDir, 'contact-vault.sqlite') });
    expect(config.kms).toEqual({ kind: 'local', keyringFile: path.join(dataDir, 'kms', 'keyring.json') });
    expect(config.auth).toEqual({
      jwtIssuer: DEV_JWT_ISSUER,
      jwtAudience: 'sealpost',
      jwks: { kind: 'file', file: path.join(dataDir, 'dev-identity', 'jwks.json') },
      stepUpWindowSeconds: 300,
      devTokens: true,
    });
    expect(config.purposes.codes).toEqual(['support-request', 'subject-access', 'fraud-investigation', 'legal-hold']);
    expect(config.purposes.ticketPattern.test('OPS-1234')).toBe(true);
    expect(config.purposes.ticketPattern.test('ops-1234')).toBe(false);
    expect(config.providers).toEqual({ mail: 'outbox', sms: 'outbox', outboxDir: path.join(dataDir, 'outbox') });
    expect(config.telemetry).toEqual({ logLevel: 'info' });
    expect(config.drainSeconds).toBe(20);
    expect(config.warnings).toEqual([]);
  });

  it.each([
    ['contact-vault', 7401],
    ['consent', 7402],
    ['dispatch', 7403],
    ['audit', 7404],
    ['anomaly', 7405],
    ['identity', 7406],
  ] as const)('%s listens on %i with its health listener 100 above', (service, port) => {
    const config = loadConfig(service, {});
    expect(config.grpc.listen).toBe(`127.0.0.1:${port}`);
    expect(config.grpc.health).toBe(`127.0.0.1:${port + 100}`);
    expect(config.grpc.peers[service]).toBe(`127.0.0.1:${port}`);
  });

  it('names the Mongo database after the service, and nats/mongo get local defaults in embedded mode', () => {
    const config = loadConfig('contact-vault', { SEALPOST_STORE: 'mongo', SEALPOST_BUS: 'nats' });
    expect(config.store).toEqual({
      kind: 'mongo',
      url: 'mongodb://127.0.0.1:27017',
      database: 'sealpost_contact_vault',
    });
    expect(config.bus).toMatchObject({
      kind: 'nats',
      servers: ['nats://127.0.0.1:4222'],
      tls: false,
      streamReplicas: 1,
    });
    expect(config.bus.kind === 'nats' && config.bus.streamMaxAgeSeconds).toBe(14 * 86400);
  });

  it('reads explicit values', () => {
    const config = loadConfig('dispatch', {
      SEALPOST_DATA_DIR: '/tmp/sp-data',
      SEALPOST_DISPATCH_GRPC_ADDR: '0.0.0.0:9000',
      SEALPOST_DISPATCH_HEALTH_ADDR: '[::1]:9100',
      SEALPOST_STEP_UP_WINDOW_SECONDS: '120',
      SEALPOST_PURPOSE_CODES: 'support-request, legal-hold',
      SEALPOST_TICKET_PATTERN: '^INC[0-9]{6}$',
      SEALPOST_OTLP_ENDPOINT: 'http://collector:4318',
      SEALPOST_LOG_LEVEL: 'debug',
      SEALPOST_DRAIN_SECONDS: '5',
      SEALPOST_DEV_TOKENS: 'false',
      SEALPOST_BUS: 'nats',
      SEALPOST_NATS_URL: 'nats://a:4222,tls://b:4222',
      SEALPOST_NATS_STREAM_REPLICAS: '3',
      SEALPOST_KMS: 'aws',
      SEALPOST_AWS_REGION: 'eu-west-1',
      SEALPOST_KMS_KEY_MAP: 'acme=arn:aws:kms:eu-west-1:111122223333:key/abc,globex=alias/globex',
      SEALPOST_KMS_ENDPOINT: 'http://127.0.0.1:8080',
    });
    expect(config.dataDir).toBe('/tmp/sp-data');
    expect(config.grpc.listen).toBe('0.0.0.0:9000');
    expect(config.grpc.health).toBe('[::1]:9100');
    expect(config.auth.stepUpWindowSeconds).toBe(120);
    expect(config.auth.devTokens).toBe(false);
    expect(config.purposes.codes).toEqual(['support-request', 'legal-hold']);
    expect(config.purposes.ticketPattern.test('INC123456')).toBe(true);
    expect(config.telemetry).toEqual({ otlpEndpoint: 'http://collector:4318', logLevel: 'debug' });
    expect(config.drainSeconds).toBe(5);
    expect(config.bus).toMatchObject({
      kind: 'nats',
      servers: ['nats://a:4222', 'tls://b:4222'],
      tls: true,
      streamReplicas: 3,
    });
    expect(config.kms).toEqual({
      kind: 'aws',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:8080',
      keyMap: { acme: 'arn:aws:kms:eu-west-1:111122223333:key/abc', globex: 'alias/globex' },
    });
    expect(config.store).toEqual({ kind: 'sqlite', file: '/tmp/sp-data/dispatch.sqlite' });
  });

  it('warns about unknown SEALPOST_* variables in embedded mode', () => {
    const config = loadConfig('consent', { SEALPOST_KMS_KEYID_TEMPLATE: 'x', PATH: '/usr/bin' });
    expect(config.warnings).toEqual([expect.stringMatching(/^SEALPOST_KMS_KEYID_TEMPLATE: is not a Sealpost setting/)]);
  });

  it('refuses an unknown service name', () => {
    expect(() => loadConfig('mailer' as never, {})).toThrow(ConfigError);
  });
});

describe('loadConfig returns a deeply frozen object', () => {
  it('cannot be changed at any depth', () => {
    const config = loadConfig('dispatch', {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { mode: string }).mode = 'production';
    }).toThrow(TypeError);
    expect(() => {
      (config.grpc.peers as Record<string, string>)['contact-vault'] = 'evil:1';
    }).toThrow(TypeError);
    expect(() => (config.purposes.codes as string[]).push('marketing-whim')).toThrow(TypeError);
    expect(() => {
      (config.tls as { dev: boolean }).dev = false;
    }).toThrow(TypeError);
    expect(config.mode).toBe('embedded');
    expect(config.purposes.codes).not.toContain('marketing-whim');
    // A frozen, non-global pattern still matches (test() writes no lastIndex).
    expect(config.purposes.ticketPattern.test('OPS-1')).toBe(true);
  });

  it('is a fresh object per call (callers share nothing mutable)', () => {
    expect(loadConfig('dispatch', {})).not.toBe(loadConfig('dispatch', {}));
  });
});

describe('loadConfig refuses bad values, naming the setting', () => {
  it.each([
    ['SEALPOST_DRAIN_SECONDS', '1e3'],
    ['SEALPOST_DRAIN_SECONDS', '-1'],
    ['SEALPOST_DRAIN_SECONDS', '2.5'],
    ['SEALPOST_DRAIN_SECONDS', '0x10'],
    ['SEALPOST_DRAIN_SECONDS', 'twenty'],
    ['SEALPOST_DRAIN_SECONDS', '0'],
    ['SEALPOST_DRAIN_SECONDS', '601'],
    ['SEALPOST_DRAIN_SECONDS', 'NaN'],
    ['SEALPOST_DRAIN_SECONDS', 'Infinity'],
    ['SEALPOST_STEP_UP_WINDOW_SECONDS', '3601'],
    ['SEALPOST_NATS_STREAM_REPLICAS', '6'],
    ['SEALPOST_NATS_STREAM_MAX_AGE_SECONDS', '59'],
    ['SEALPOST_DEV_TOKENS', 'TRUE'],
    ['SEALPOST_DEV_TOKENS', 'yes'],
    ['SEALPOST_DEV_TOKENS', '1'],
    ['SEALPOST_MODE', 'prod'],
    ['SEALPOST_STORE', 'postgres'],
    ['SEALPOST_LOG_LEVEL', 'verbose'],
    ['SEALPOST_VAULT_GRPC_ADDR', '127.0.0.1'],
    ['SEALPOST_VAULT_GRPC_ADDR', '127.0.0.1:0'],
    ['SEALPOST_VAULT_GRPC_ADDR', '127.0.0.1:70000'],
    ['SEALPOST_VAULT_GRPC_ADDR', ':7401'],
    ['SEALPOST_OTLP_ENDPOINT', 'collector:4318'],
    ['SEALPOST_OTLP_ENDPOINT', 'ftp://collector'],
    ['SEALPOST_TRUST_DOMAIN', 'Prod.Example.COM'],
    ['SEALPOST_TRUST_DOMAIN', 'prod example'],
    ['SEALPOST_TICKET_PATTERN', '^[A-Z+$'],
    ['SEALPOST_TICKET_PATTERN', '[A-Z]+-[0-9]+'],
    ['SEALPOST_TICKET_PATTERN', '^.*$'],
    ['SEALPOST_TICKET_PATTERN', '^[^ ]*$'],
    ['SEALPOST_TICKET_PATTERN', '^[A-Za-z .@+]+$'],
    ['SEALPOST_PURPOSE_CODES', 'support-request,Marketing'],
    ['SEALPOST_PURPOSE_CODES', 'support-request,,legal-hold'],
    ['SEALPOST_PURPOSE_CODES', 'legal-hold,legal-hold'],
    ['SEALPOST_AWS_REGION', 'Europe'],
    ['SEALPOST_KMS_KEY_ID_TEMPLATE', 'alias/sealpost'],
    ['SEALPOST_KMS_KEY_MAP', 'acme'],
    ['SEALPOST_KMS_KEY_MAP', 'acme=a,acme=b'],
    ['SEALPOST_MONGO_URL', 'postgres://db'],
    ['SEALPOST_NATS_URL', 'http://nats:4222'],
    ['SEALPOST_SERVICE', 'Contact Vault'],
  ])('%s=%j', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: `));
  });

  it.each([
    'SEALPOST_MODE',
    'SEALPOST_DATA_DIR',
    'SEALPOST_DRAIN_SECONDS',
    'SEALPOST_TLS_CA_FILE',
    'SEALPOST_PURPOSE_CODES',
  ])('refuses an empty %s instead of defaulting it', (name) => {
    for (const value of ['', '   ']) {
      const problems = problemsOf({ [name]: value });
      expect(problems).toEqual([`${name}: is set but empty; unset it to use the default, or give a value`]);
    }
  });

  it('refuses surrounding whitespace', () => {
    expect(problemsOf({ SEALPOST_DRAIN_SECONDS: ' 20' })).toEqual([
      'SEALPOST_DRAIN_SECONDS: has leading or trailing whitespace',
    ]);
  });

  it('refuses contradictory settings', () => {
    expect(
      problemsOf({ SEALPOST_JWKS_URL: 'https://id.example.com/jwks', SEALPOST_JWKS_FILE: '/etc/jwks.json' }),
    ).toEqual(['SEALPOST_JWKS_FILE: contradicts SEALPOST_JWKS_URL; set only one']);
    const kms = problemsOf({
      SEALPOST_KMS: 'aws',
      SEALPOST_AWS_REGION: 'eu-west-1',
      SEALPOST_KMS_KEY_ID_TEMPLATE: 'alias/sp-{tenant}',
      SEALPOST_KMS_KEY_MAP: 'acme=alias/acme',
    });
    expect(kms).toEqual(['SEALPOST_KMS_KEY_MAP: contradicts SEALPOST_KMS_KEY_ID_TEMPLATE; set only one']);
  });

  it('needs a user and its password file together', () => {
    expect(problemsOf({ SEALPOST_NATS_USER: 'dispatch' })).toEqual([
      'SEALPOST_NATS_PASSWORD_FILE: required when SEALPOST_NATS_USER is set',
    ]);
    expect(problemsOf({ SEALPOST_MONGO_PASSWORD_FILE: '/run/secrets/mongo' })).toEqual([
      'SEALPOST_MONGO_USER: required when SEALPOST_MONGO_PASSWORD_FILE is set',
    ]);
  });

  it('needs a region and a key source for AWS KMS, and a region for SES/SNS', () => {
    expect(problemsOf({ SEALPOST_KMS: 'aws' })).toEqual([
      'SEALPOST_AWS_REGION: required when SEALPOST_KMS=aws',
      'SEALPOST_KMS_KEY_ID_TEMPLATE: required when SEALPOST_KMS=aws (or SEALPOST_KMS_KEY_MAP)',
    ]);
    expect(problemsOf({ SEALPOST_MAIL_PROVIDER: 'ses' })).toEqual([
      'SEALPOST_AWS_REGION: required when SEALPOST_MAIL_PROVIDER=ses or SEALPOST_SMS_PROVIDER=sns',
    ]);
  });

  it('refuses two embedded listeners on one address', () => {
    expect(problemsOf({ SEALPOST_CONSENT_GRPC_ADDR: '127.0.0.1:7401' })).toEqual([
      'SEALPOST_CONSENT_GRPC_ADDR: uses the same address as SEALPOST_VAULT_GRPC_ADDR',
    ]);
  });

  it('lists every problem at once', () => {
    const problems = problemsOf({
      SEALPOST_MODE: 'production',
      SEALPOST_DRAIN_SECONDS: 'soon',
      SEALPOST_LOG_LEVEL: '',
    });
    const named = problems.map((line) => line.slice(0, line.indexOf(':')));
    expect(named).toEqual(
      expect.arrayContaining([
        'SEALPOST_DRAIN_SECONDS',
        'SEALPOST_LOG_LEVEL',
        'SEALPOST_TRUST_DOMAIN',
        'SEALPOST_TLS_CA_FILE',
        'SEALPOST_NATS_URL',
        'SEALPOST_MONGO_URL',
        'SEALPOST_AWS_REGION',
        'SEALPOST_JWT_ISSUER',
      ]),
    );
    expect(problems.length).toBeGreaterThanOrEqual(8);
  });
});

describe('error messages never carry values', () => {
  const CANARY = 'Canary-Secret-7f3a9';

  it.each([
    ['SEALPOST_MONGO_URL', `mongodb://svc:${CANARY}@mongo:27017/db`],
    ['SEALPOST_NATS_URL', `tls://svc:${CANARY}@nats:4222`],
    ['SEALPOST_OTLP_ENDPOINT', `https://u:${CANARY}@collector`],
    ['SEALPOST_DRAIN_SECONDS', CANARY],
    ['SEALPOST_NATS_USER', `${CANARY} with spaces`],
    ['SEALPOST_MODE', CANARY],
    ['SEALPOST_TICKET_PATTERN', `^${CANARY}(`],
    ['SEALPOST_KMS_KEY_MAP', CANARY],
    ['SEALPOST_TYPO_SETTING', CANARY],
  ])('%s', (name, value) => {
    let message = '';
    try {
      loadConfig('dispatch', { SEALPOST_MODE: 'production', [name]: value });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = `${(error as ConfigError).message}\n${(error as ConfigError).problems.join('\n')}`;
    }
    expect(message).toContain(`${name}: `);
    expect(message).not.toContain(CANARY);
    expect(message.toLowerCase()).not.toContain('canary');
  });
});
