import path from 'node:path';
import { ConfigError } from './errors';
import { loadConfig } from './load-config';

/** A complete production environment with no stand-ins: every test below breaks exactly one thing. */
const PRODUCTION: Readonly<Record<string, string>> = Object.freeze({
  SEALPOST_MODE: 'production',
  SEALPOST_DATA_DIR: '/var/lib/sealpost',
  SEALPOST_TRUST_DOMAIN: 'prod.example.com',
  SEALPOST_TLS_CA_FILE: '/etc/sealpost/tls/ca.pem',
  SEALPOST_TLS_CERT_FILE: '/etc/sealpost/tls/tls.crt',
  SEALPOST_TLS_KEY_FILE: '/etc/sealpost/tls/tls.key',
  SEALPOST_NATS_URL: 'tls://nats.messaging.svc:4222',
  SEALPOST_NATS_USER: 'dispatch',
  SEALPOST_NATS_PASSWORD_FILE: '/run/secrets/nats/password',
  SEALPOST_MONGO_URL: 'mongodb://mongo.data.svc:27017/?tls=true',
  SEALPOST_MONGO_USER: 'dispatch',
  SEALPOST_MONGO_PASSWORD_FILE: '/run/secrets/mongo/password',
  SEALPOST_AWS_REGION: 'eu-west-1',
  SEALPOST_KMS_KEY_ID_TEMPLATE: 'alias/sealpost-{tenant}',
  SEALPOST_JWT_ISSUER: 'https://identity.prod.example.com',
  SEALPOST_JWKS_URL: 'https://identity.prod.example.com/.well-known/jwks.json',
});

function refusal(overrides: Record<string, string | undefined>): readonly string[] {
  const env: Record<string, string | undefined> = { ...PRODUCTION, ...overrides };
  try {
    loadConfig('dispatch', env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    return (error as ConfigError).problems;
  }
  throw new Error('expected production to refuse');
}

describe('production without stand-ins', () => {
  it('loads, with production adapters as defaults', () => {
    const config = loadConfig('dispatch', PRODUCTION);
    expect(config.mode).toBe('production');
    expect(config.spiffeId).toBe('spiffe://prod.example.com/dispatch');
    expect(config.tls.dev).toBe(false);
    expect(config.bus).toMatchObject({ kind: 'nats', tls: true, streamReplicas: 3, user: 'dispatch' });
    expect(config.store).toMatchObject({ kind: 'mongo', database: 'sealpost_dispatch' });
    expect(config.kms).toMatchObject({ kind: 'aws', region: 'eu-west-1', keyIdTemplate: 'alias/sealpost-{tenant}' });
    expect(config.providers).toMatchObject({ mail: 'ses', sms: 'sns' });
    expect(config.auth.devTokens).toBe(false);
    expect(config.auth.jwks).toEqual({ kind: 'url', url: PRODUCTION.SEALPOST_JWKS_URL });
    expect(config.grpc.listen).toBe('0.0.0.0:7403');
    expect(config.grpc.health).toBe('0.0.0.0:7503');
    expect(config.grpc.peers['contact-vault']).toBe('sealpost-contact-vault:7401');
    expect(config.warnings).toEqual([]);
  });

  it('accepts a JWKS file outside the dev directories and a NATS CA file instead of tls://', () => {
    const config = loadConfig('dispatch', {
      ...PRODUCTION,
      SEALPOST_JWKS_URL: undefined,
      SEALPOST_JWKS_FILE: '/etc/sealpost/jwks.json',
      SEALPOST_NATS_URL: 'nats://nats.messaging.svc:4222',
      SEALPOST_NATS_CA_FILE: '/etc/sealpost/nats-ca.pem',
    });
    expect(config.auth.jwks).toEqual({ kind: 'file', file: '/etc/sealpost/jwks.json' });
    expect(config.bus).toMatchObject({ tls: true, caFile: '/etc/sealpost/nats-ca.pem' });
  });
});

describe('production refuses every stand-in, naming the setting', () => {
  const devCa = '/var/lib/sealpost/dev-ca';
  it.each<[string, Record<string, string | undefined>, string, RegExp]>([
    ['local keyring', { SEALPOST_KMS: 'local' }, 'SEALPOST_KMS', /local keyring/],
    ['unset TLS CA (dev CA)', { SEALPOST_TLS_CA_FILE: undefined }, 'SEALPOST_TLS_CA_FILE', /required/],
    ['unset TLS cert (dev CA)', { SEALPOST_TLS_CERT_FILE: undefined }, 'SEALPOST_TLS_CERT_FILE', /required/],
    ['unset TLS key (dev CA)', { SEALPOST_TLS_KEY_FILE: undefined }, 'SEALPOST_TLS_KEY_FILE', /required/],
    ['dev CA bundle', { SEALPOST_TLS_CA_FILE: `${devCa}/ca.pem` }, 'SEALPOST_TLS_CA_FILE', /dev CA/],
    ['dev CA certificate', { SEALPOST_TLS_CERT_FILE: `${devCa}/dispatch.pem` }, 'SEALPOST_TLS_CERT_FILE', /dev CA/],
    ['dev CA key', { SEALPOST_TLS_KEY_FILE: `${devCa}/dispatch-key.pem` }, 'SEALPOST_TLS_KEY_FILE', /dev CA/],
    [
      'TLS file in the default ./.sealpost',
      { SEALPOST_TLS_CA_FILE: './.sealpost/ca.pem' },
      'SEALPOST_TLS_CA_FILE',
      /dev CA/,
    ],
    ['dev CA for NATS', { SEALPOST_NATS_CA_FILE: `${devCa}/ca.pem` }, 'SEALPOST_NATS_CA_FILE', /dev CA/],
    ['outbox mail provider', { SEALPOST_MAIL_PROVIDER: 'outbox' }, 'SEALPOST_MAIL_PROVIDER', /outbox/],
    ['outbox SMS provider', { SEALPOST_SMS_PROVIDER: 'outbox' }, 'SEALPOST_SMS_PROVIDER', /outbox/],
    ['SQLite store', { SEALPOST_STORE: 'sqlite' }, 'SEALPOST_STORE', /SQLite/],
    ['embedded bus', { SEALPOST_BUS: 'embedded' }, 'SEALPOST_BUS', /embedded bus/],
    ['dev tokens', { SEALPOST_DEV_TOKENS: 'true' }, 'SEALPOST_DEV_TOKENS', /dev tokens/],
    ['dev issuer', { SEALPOST_JWT_ISSUER: 'https://identity.sealpost.dev/' }, 'SEALPOST_JWT_ISSUER', /dev issuer/],
    ['unset issuer (dev issuer)', { SEALPOST_JWT_ISSUER: undefined }, 'SEALPOST_JWT_ISSUER', /required/],
    [
      'dev JWKS file',
      { SEALPOST_JWKS_URL: undefined, SEALPOST_JWKS_FILE: '/var/lib/sealpost/dev-identity/jwks.json' },
      'SEALPOST_JWKS_FILE',
      /dev/,
    ],
    [
      'JWKS of the dev issuer',
      { SEALPOST_JWKS_URL: 'https://identity.sealpost.dev/jwks' },
      'SEALPOST_JWKS_URL',
      /dev issuer/,
    ],
    ['unset JWKS (dev keys)', { SEALPOST_JWKS_URL: undefined }, 'SEALPOST_JWKS_URL', /required/],
    [
      'JWKS over plain http',
      { SEALPOST_JWKS_URL: 'http://identity.prod.example.com/jwks' },
      'SEALPOST_JWKS_URL',
      /https/,
    ],
    ['missing trust domain', { SEALPOST_TRUST_DOMAIN: undefined }, 'SEALPOST_TRUST_DOMAIN', /required/],
    ['dev trust domain', { SEALPOST_TRUST_DOMAIN: 'sealpost.dev' }, 'SEALPOST_TRUST_DOMAIN', /dev trust domain/],
    ['NATS without TLS', { SEALPOST_NATS_URL: 'nats://nats.messaging.svc:4222' }, 'SEALPOST_NATS_URL', /TLS/],
    ['NATS without a user', { SEALPOST_NATS_USER: undefined }, 'SEALPOST_NATS_USER', /required/],
    ['one stream replica', { SEALPOST_NATS_STREAM_REPLICAS: '1' }, 'SEALPOST_NATS_STREAM_REPLICAS', /at least 3/],
    ['KMS emulator over http', { SEALPOST_KMS_ENDPOINT: 'http://127.0.0.1:8080' }, 'SEALPOST_KMS_ENDPOINT', /https/],
    ['SES emulator over http', { SEALPOST_SES_ENDPOINT: 'http://127.0.0.1:8005' }, 'SEALPOST_SES_ENDPOINT', /https/],
    ['missing Mongo URL', { SEALPOST_MONGO_URL: undefined }, 'SEALPOST_MONGO_URL', /required/],
    ['misspelt setting', { SEALPOST_MAIL_PROVIDOR: 'ses' }, 'SEALPOST_MAIL_PROVIDOR', /not a Sealpost setting/],
  ])('%s', (_label, overrides, setting, reason) => {
    const problems = refusal(overrides);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${setting}: `)).toBe(true);
    expect(problems[0]).toMatch(reason);
  });

  it('ignores the test harness variables (SEALPOST_TEST_*, SEALPOST_PEERS_*)', () => {
    const config = loadConfig('dispatch', {
      ...PRODUCTION,
      SEALPOST_TEST_NATS_URL: 'nats://127.0.0.1:4222',
      SEALPOST_PEERS_CACHE: '/tmp/peers',
    });
    expect(config.warnings).toEqual([]);
  });

  it('refuses a dev-CA path given relative to the working directory', () => {
    const relative = path.relative(process.cwd(), '/var/lib/sealpost/dev-ca/ca.pem');
    expect(refusal({ SEALPOST_TLS_CA_FILE: relative })).toEqual([
      expect.stringMatching(/^SEALPOST_TLS_CA_FILE: .*dev CA/),
    ]);
  });

  it('lists all stand-ins of a dev environment switched to production at once', () => {
    const problems = refusal({
      SEALPOST_KMS: 'local',
      SEALPOST_STORE: 'sqlite',
      SEALPOST_BUS: 'embedded',
      SEALPOST_MAIL_PROVIDER: 'outbox',
      SEALPOST_SMS_PROVIDER: 'outbox',
      SEALPOST_TRUST_DOMAIN: 'sealpost.dev',
    });
    expect(problems.map((line) => line.split(':')[0]).sort()).toEqual([
      'SEALPOST_BUS',
      'SEALPOST_KMS',
      'SEALPOST_MAIL_PROVIDER',
      'SEALPOST_SMS_PROVIDER',
      'SEALPOST_STORE',
      'SEALPOST_TRUST_DOMAIN',
    ]);
  });
});
