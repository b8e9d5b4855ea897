import path from 'node:path';
import { ConfigError } from './errors';
import { loadConfig } from './load-config';

/** A complete production environment of the audit service; each test changes one thing. */
const AUDIT_PRODUCTION: Readonly<Record<string, string>> = Object.freeze({
  SEALPOST_MODE: 'production',
  SEALPOST_DATA_DIR: '/var/lib/sealpost',
  SEALPOST_TRUST_DOMAIN: 'prod.example.com',
  SEALPOST_TLS_CA_FILE: '/etc/sealpost/tls/ca.pem',
  SEALPOST_TLS_CERT_FILE: '/etc/sealpost/tls/tls.crt',
  SEALPOST_TLS_KEY_FILE: '/etc/sealpost/tls/tls.key',
  SEALPOST_NATS_URL: 'tls://nats-0.nats:4222,tls://nats-1.nats:4222,tls://nats-2.nats:4222',
  SEALPOST_NATS_USER: 'audit',
  SEALPOST_NATS_PASSWORD_FILE: '/run/secrets/nats/password',
  SEALPOST_MONGO_URL: 'mongodb://mongo.data.svc:27017/?tls=true',
  SEALPOST_AWS_REGION: 'eu-west-1',
  SEALPOST_KMS_KEY_ID_TEMPLATE: 'alias/sealpost-{tenant}',
  SEALPOST_JWT_ISSUER: 'https://identity.prod.example.com',
  SEALPOST_JWKS_URL: 'https://identity.prod.example.com/.well-known/jwks.json',
  SEALPOST_AUDIT_SIGNING_KEY_ID: 'alias/sealpost-prod-audit-sth',
  SEALPOST_AUDIT_WITNESS_FILE: '/var/lib/sealpost-witness/witness.jsonl',
});

function problemsOf(service: 'audit' | 'dispatch', env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(service, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

describe('audit tree-head settings', () => {
  it('production audit loads with a KMS signing key, a witness file and the cadence', () => {
    const config = loadConfig('audit', {
      ...AUDIT_PRODUCTION,
      SEALPOST_AUDIT_STH_EVERY_ENTRIES: '250',
      SEALPOST_AUDIT_STH_EVERY_SECONDS: '15',
    });
    expect(config.audit).toEqual({
      signingKeyId: 'alias/sealpost-prod-audit-sth',
      witnessFile: '/var/lib/sealpost-witness/witness.jsonl',
      sthEveryEntries: 250,
      sthEverySeconds: 15,
    });
  });

  it('embedded defaults: no KMS key, the witness under the data dir, every 1000 entries and 60 s', () => {
    const dataDir = path.resolve('/tmp/sealpost-audit-settings');
    const config = loadConfig('audit', { SEALPOST_DATA_DIR: dataDir });
    expect(config.audit).toEqual({
      witnessFile: path.join(dataDir, 'audit', 'witness.jsonl'),
      sthEveryEntries: 1000,
      sthEverySeconds: 60,
    });
  });

  it('production audit refuses a missing signing key and a missing witness file, naming both', () => {
    const problems = problemsOf('audit', {
      ...AUDIT_PRODUCTION,
      SEALPOST_AUDIT_SIGNING_KEY_ID: undefined,
      SEALPOST_AUDIT_WITNESS_FILE: undefined,
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'SEALPOST_AUDIT_SIGNING_KEY_ID',
      'SEALPOST_AUDIT_WITNESS_FILE',
    ]);
  });

  it('production refuses a witness file under ./.sealpost', () => {
    const problems = problemsOf('audit', {
      ...AUDIT_PRODUCTION,
      SEALPOST_AUDIT_WITNESS_FILE: path.resolve('.sealpost/audit/witness.jsonl'),
    });
    expect(problems).toEqual([expect.stringMatching(/^SEALPOST_AUDIT_WITNESS_FILE: .*production refuses it/)]);
  });

  it('other services do not need the audit settings in production', () => {
    const env = { ...AUDIT_PRODUCTION, SEALPOST_NATS_USER: 'dispatch' };
    delete (env as Record<string, string | undefined>).SEALPOST_AUDIT_SIGNING_KEY_ID;
    delete (env as Record<string, string | undefined>).SEALPOST_AUDIT_WITNESS_FILE;
    expect(() => loadConfig('dispatch', env)).not.toThrow();
  });

  it('a signing key needs SEALPOST_KMS=aws (embedded with the local keyring is refused)', () => {
    const problems = problemsOf('audit', { SEALPOST_AUDIT_SIGNING_KEY_ID: 'alias/sth' });
    expect(problems).toEqual([expect.stringMatching(/^SEALPOST_AUDIT_SIGNING_KEY_ID: .*SEALPOST_KMS=aws/)]);
  });

  it.each([
    ['SEALPOST_AUDIT_SIGNING_KEY_ID', 'alias/with space'],
    ['SEALPOST_AUDIT_STH_EVERY_ENTRIES', '0'],
    ['SEALPOST_AUDIT_STH_EVERY_ENTRIES', '1e3'],
    ['SEALPOST_AUDIT_STH_EVERY_SECONDS', '86401'],
    ['SEALPOST_AUDIT_STH_EVERY_SECONDS', '-5'],
  ])('refuses %s=%s without echoing the value', (name, value) => {
    const problems = problemsOf('audit', { ...AUDIT_PRODUCTION, [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: `));
    expect(problems[0]).not.toContain(value);
  });
});

describe('audit log retention', () => {
  it('is unset by default (keep forever) and read as whole days', () => {
    expect(loadConfig('audit', AUDIT_PRODUCTION).audit.retentionDays).toBeUndefined();
    expect(loadConfig('audit', { ...AUDIT_PRODUCTION, SEALPOST_AUDIT_RETENTION_DAYS: '400' }).audit.retentionDays).toBe(
      400,
    );
  });

  it.each(['0', '-3', '1.5', 'forever', '36501'])('refuses %s, naming the setting', (value) => {
    const problems = problemsOf('audit', { ...AUDIT_PRODUCTION, SEALPOST_AUDIT_RETENTION_DAYS: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^SEALPOST_AUDIT_RETENTION_DAYS/);
  });
});
