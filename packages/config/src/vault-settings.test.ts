import path from 'node:path';
import { ConfigError } from './errors';
import { loadConfig } from './load-config';

const VAULT_PRODUCTION: Readonly<Record<string, string>> = Object.freeze({
  SEALPOST_MODE: 'production',
  SEALPOST_DATA_DIR: '/var/lib/sealpost',
  SEALPOST_TRUST_DOMAIN: 'prod.example.com',
  SEALPOST_TLS_CA_FILE: '/etc/sealpost/tls/ca.pem',
  SEALPOST_TLS_CERT_FILE: '/etc/sealpost/tls/tls.crt',
  SEALPOST_TLS_KEY_FILE: '/etc/sealpost/tls/tls.key',
  SEALPOST_NATS_URL: 'tls://nats.messaging.svc:4222',
  SEALPOST_NATS_USER: 'contact-vault',
  SEALPOST_NATS_PASSWORD_FILE: '/run/secrets/nats/password',
  SEALPOST_MONGO_URL: 'mongodb://mongo.data.svc:27017/?tls=true',
  SEALPOST_AWS_REGION: 'eu-west-1',
  SEALPOST_KMS_KEY_ID_TEMPLATE: 'alias/sealpost-{tenant}',
  SEALPOST_JWT_ISSUER: 'https://identity.prod.example.com',
  SEALPOST_JWKS_URL: 'https://identity.prod.example.com/.well-known/jwks.json',
  SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID: 'alias/sealpost-prod-receipts',
});

function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig('contact-vault', env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

describe('contact vault settings', () => {
  it('defaults: email dedupe, no folding, quotas, key store beside but apart from the contact store', () => {
    const config = loadConfig('contact-vault', { SEALPOST_DATA_DIR: '/tmp/sp-vault' });
    expect(config.vault).toEqual({
      dedupeKey: 'email',
      emailFolding: false,
      quotas: {
        reveal: { limit: 20, windowSeconds: 3600 },
        find: { limit: 200, windowSeconds: 3600 },
        resolve: { limit: 1_000_000, windowSeconds: 3600 },
        resolvePurpose: { limit: 200_000, windowSeconds: 86_400 },
      },
      keyStore: { kind: 'sqlite', file: path.resolve('/tmp/sp-vault/contact-vault-keys.sqlite') },
      retention: { tenants: {} },
      retentionSweepEverySeconds: 3600,
      auditProofWaitSeconds: 180,
      importBatchRows: 4096,
    });
  });

  it('reads every vault setting', () => {
    const config = loadConfig('contact-vault', {
      SEALPOST_DATA_DIR: '/tmp/sp-vault',
      SEALPOST_VAULT_DEDUPE_KEY: 'phone',
      SEALPOST_VAULT_DEFAULT_PHONE_REGION: 'GB',
      SEALPOST_VAULT_EMAIL_FOLDING: 'true',
      SEALPOST_VAULT_REVEAL_QUOTA: '5/60',
      SEALPOST_VAULT_FIND_QUOTA: '7/60',
      SEALPOST_VAULT_RESOLVE_QUOTA: '100/1',
      SEALPOST_VAULT_RESOLVE_PURPOSE_QUOTA: '50/10',
      SEALPOST_VAULT_KEYSTORE_FILE: '/keys/vault-keys.sqlite',
      SEALPOST_VAULT_RETENTION_DAYS: 't-acme=30,t-globex=365',
      SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS: '600',
      SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS: '15',
      SEALPOST_VAULT_IMPORT_BATCH_ROWS: '500',
    });
    expect(config.vault).toMatchObject({
      dedupeKey: 'phone',
      defaultPhoneRegion: 'GB',
      emailFolding: true,
      quotas: {
        reveal: { limit: 5, windowSeconds: 60 },
        find: { limit: 7, windowSeconds: 60 },
        resolve: { limit: 100, windowSeconds: 1 },
        resolvePurpose: { limit: 50, windowSeconds: 10 },
      },
      keyStore: { kind: 'sqlite', file: '/keys/vault-keys.sqlite' },
      retention: { tenants: { 't-acme': 30, 't-globex': 365 } },
      retentionSweepEverySeconds: 600,
      auditProofWaitSeconds: 15,
      importBatchRows: 500,
    });
    expect(loadConfig('contact-vault', { SEALPOST_VAULT_RETENTION_DAYS: '90' }).vault.retention).toEqual({
      all: 90,
      tenants: {},
    });
  });

  it('refuses bad values naming the setting, never echoing the value', () => {
    const problems = problemsOf({
      SEALPOST_VAULT_DEDUPE_KEY: 'name',
      SEALPOST_VAULT_DEFAULT_PHONE_REGION: 'gb',
      SEALPOST_VAULT_REVEAL_QUOTA: '0/60',
      SEALPOST_VAULT_FIND_QUOTA: 'lots',
      SEALPOST_VAULT_RETENTION_DAYS: 't-acme=30,t-acme=40',
      SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS: '0',
      SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS: '86401',
      SEALPOST_VAULT_IMPORT_BATCH_ROWS: '15',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS',
      'SEALPOST_VAULT_DEDUPE_KEY',
      'SEALPOST_VAULT_DEFAULT_PHONE_REGION',
      'SEALPOST_VAULT_FIND_QUOTA',
      'SEALPOST_VAULT_IMPORT_BATCH_ROWS',
      'SEALPOST_VAULT_RETENTION_DAYS',
      'SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS',
      'SEALPOST_VAULT_REVEAL_QUOTA',
    ]);
    expect(problems.join('\n')).not.toContain('lots');
  });

  it('refuses a key store that is the contact store', () => {
    const problems = problemsOf({
      SEALPOST_DATA_DIR: '/tmp/sp-vault',
      SEALPOST_VAULT_KEYSTORE_FILE: '/tmp/sp-vault/contact-vault.sqlite',
    });
    expect(problems).toEqual([expect.stringMatching(/^SEALPOST_VAULT_KEYSTORE_FILE: .*contact store/)]);
    const mongo = problemsOf({ SEALPOST_STORE: 'mongo', SEALPOST_VAULT_KEYSTORE_DATABASE: 'sealpost_contact_vault' });
    expect(mongo).toEqual([expect.stringMatching(/^SEALPOST_VAULT_KEYSTORE_DATABASE: /)]);
    // The same server written another way is still the same server; another server may hold the same database name.
    const contacts = {
      SEALPOST_STORE: 'mongo',
      SEALPOST_MONGO_URL: 'mongodb://mongo-a.data.svc,mongo-b.data.svc/?tls=true',
    };
    for (const sameServer of [
      'mongodb://mongo-a.data.svc,mongo-b.data.svc/?tls=true',
      'mongodb://MONGO-B.data.svc:27017/',
      'mongodb://keys-user@mongo-a.data.svc.:27017/?tls=true',
    ]) {
      const problems = problemsOf({
        ...contacts,
        SEALPOST_VAULT_KEYSTORE_MONGO_URL: sameServer,
        SEALPOST_VAULT_KEYSTORE_DATABASE: 'sealpost_contact_vault',
      });
      expect(problems).toEqual([expect.stringMatching(/^SEALPOST_VAULT_KEYSTORE_DATABASE: .*same server/)]);
    }
    for (const otherServer of ['mongodb://mongo-keys.data.svc/?tls=true', 'mongodb://mongo-a.data.svc:27018/']) {
      const config = loadConfig('contact-vault', {
        ...contacts,
        SEALPOST_VAULT_KEYSTORE_MONGO_URL: otherServer,
        SEALPOST_VAULT_KEYSTORE_DATABASE: 'sealpost_contact_vault',
      });
      expect(config.vault.keyStore).toEqual({ kind: 'mongo', url: otherServer, database: 'sealpost_contact_vault' });
    }
  });

  it('production: a separate key-store server, and a KMS key for receipts is required', () => {
    const config = loadConfig('contact-vault', {
      ...VAULT_PRODUCTION,
      SEALPOST_VAULT_KEYSTORE_MONGO_URL: 'mongodb://mongo-keys.data.svc:27017/?tls=true',
    });
    expect(config.vault.keyStore).toEqual({
      kind: 'mongo',
      url: 'mongodb://mongo-keys.data.svc:27017/?tls=true',
      database: 'sealpost_contact_vault_keys',
    });
    expect(config.vault.receiptSigningKeyId).toBe('alias/sealpost-prod-receipts');
    const problems = problemsOf({ ...VAULT_PRODUCTION, SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID: undefined });
    expect(problems).toEqual([expect.stringMatching(/^SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID: required in production/)]);
  });
});
