import path from 'node:path';
import { deepFreeze } from './deep-freeze';
import { EnvReader, type Env } from './env-reader';
import { ConfigError } from './errors';
import {
  HEALTH_PORT_OFFSET,
  SERVICE_GRPC_PORT,
  SERVICE_NAMES,
  defaultDatabaseOf,
  isServiceName,
  type ServiceName,
} from './services';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_PURPOSE_CODES,
  DEFAULT_TICKET_PATTERN,
  DEV_JWT_ISSUER,
  DEV_TRUST_DOMAIN,
  LOG_LEVELS,
  grpcAddrSetting,
  healthAddrSetting,
  isSettingName,
  type LogLevel,
  type SettingName,
} from './settings';
import {
  awsRegion,
  booleanFlag,
  hostPort,
  keyIdTemplate,
  keyMap,
  kmsKeyId,
  oneOf,
  pathValue,
  purposeCodes,
  quota,
  regionCode,
  retentionDays,
  serviceTag,
  ticketPattern,
  tokenValue,
  trustDomain,
  namespaceName,
  url,
  urlList,
  wholeNumber,
} from './values';

export type Mode = 'embedded' | 'production';

export interface TlsConfig {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** True when these are the embedded dev CA's files (only possible in embedded mode). */
  readonly dev: boolean;
}

export interface GrpcConfig {
  /** Where this service serves gRPC. */
  readonly listen: string;
  /** Where this service serves gRPC health only, for probes without client certificates. */
  readonly health: string;
  /** Where every service (this one included) is dialled. */
  readonly peers: Readonly<Record<ServiceName, string>>;
}

export type BusConfig =
  | { readonly kind: 'embedded'; readonly file: string }
  | {
      readonly kind: 'nats';
      readonly servers: readonly string[];
      readonly user?: string;
      readonly passwordFile?: string;
      readonly caFile?: string;
      /** True when the connection must use TLS (a `tls://` URL or a CA file). */
      readonly tls: boolean;
      readonly streamReplicas: number;
      readonly streamMaxAgeSeconds: number;
    };

export type StoreConfig =
  | { readonly kind: 'sqlite'; readonly file: string }
  | {
      readonly kind: 'mongo';
      readonly url: string;
      readonly database: string;
      readonly user?: string;
      readonly passwordFile?: string;
    };

export type KmsConfig =
  | { readonly kind: 'local'; readonly keyringFile: string }
  | {
      readonly kind: 'aws';
      readonly region: string;
      readonly endpoint?: string;
      /** Exactly one of `keyIdTemplate` (with `{tenant}`) and `keyMap` is set. */
      readonly keyIdTemplate?: string;
      readonly keyMap?: Readonly<Record<string, string>>;
    };

/** The audit service's tree-head signing and witnessing (read by `audit`; defaults elsewhere). */
export interface AuditConfig {
  /** KMS key (ES256, ECC_NIST_P256) signing tree heads; unset only in embedded mode (local Ed25519 file key). */
  readonly signingKeyId?: string;
  /** JSON-lines witness of every signed tree head, outside the database. */
  readonly witnessFile: string;
  readonly sthEveryEntries: number;
  readonly sthEverySeconds: number;
  /** Entries older than this many days are pruned (bytes only; nodes and heads stay). Unset: kept forever. */
  readonly retentionDays?: number;
}

export type JwksSource =
  { readonly kind: 'url'; readonly url: string } | { readonly kind: 'file'; readonly file: string };

export interface AuthConfig {
  readonly jwtIssuer: string;
  readonly jwtAudience: string;
  readonly jwks: JwksSource;
  readonly stepUpWindowSeconds: number;
  /** Whether tokens minted with the embedded dev key are accepted (never in production). */
  readonly devTokens: boolean;
}

export interface ProvidersConfig {
  readonly mail: 'outbox' | 'ses';
  readonly sms: 'outbox' | 'sns';
  /** Where the outbox providers write (embedded). */
  readonly outboxDir: string;
  readonly awsRegion?: string;
  readonly sesEndpoint?: string;
  readonly snsEndpoint?: string;
}

/** A sliding-window limit: at most `limit` units per `windowSeconds`. */
export interface QuotaConfig {
  readonly limit: number;
  readonly windowSeconds: number;
}

/** The contact vault's own settings (defaults elsewhere). */
export interface VaultConfig {
  readonly dedupeKey: 'email' | 'phone';
  readonly defaultPhoneRegion?: string;
  readonly emailFolding: boolean;
  readonly quotas: {
    /** Reveals and exports per principal. */
    readonly reveal: QuotaConfig;
    readonly find: QuotaConfig;
    /** Addresses resolved per calling service. */
    readonly resolve: QuotaConfig;
    /** Addresses resolved per purpose (campaign or message id). */
    readonly resolvePurpose: QuotaConfig;
  };
  /** Where wrapped data keys live: a file (SQLite) or a database (MongoDB), never beside the contacts. */
  readonly keyStore:
    | { readonly kind: 'sqlite'; readonly file: string }
    | { readonly kind: 'mongo'; readonly url?: string; readonly database: string };
  /** Days without activity after which contacts are erased: `all` for every tenant, overridden per tenant. */
  readonly retention: { readonly all?: number; readonly tenants: Readonly<Record<string, number>> };
  /** How often the retention sweep runs (on the replica holding its lease). */
  readonly retentionSweepEverySeconds: number;
  /** KMS key signing erasure receipts; unset in embedded mode only (local Ed25519 file key). */
  readonly receiptSigningKeyId?: string;
  /** How long an erasure waits for its audit entry's signed inclusion proof before failing AUDIT_UNAVAILABLE. */
  readonly auditProofWaitSeconds: number;
  /** Rows a bulk import writes per transaction. */
  readonly importBatchRows: number;
}

/** One service's validated, deeply frozen configuration. */
export interface SealpostConfig {
  readonly service: ServiceName;
  readonly mode: Mode;
  readonly dataDir: string;
  readonly trustDomain: string;
  /** `spiffe://<trust domain>/<service>`: the identity this service's certificate must carry. */
  readonly spiffeId: string;
  /** When set, peers may also present `spiffe://<trust domain>/ns/<namespace>/sa/<service>` (csi-driver-spiffe). */
  readonly spiffeNamespace?: string;
  readonly tls: TlsConfig;
  readonly grpc: GrpcConfig;
  readonly bus: BusConfig;
  readonly store: StoreConfig;
  readonly kms: KmsConfig;
  readonly audit: AuditConfig;
  readonly vault: VaultConfig;
  readonly auth: AuthConfig;
  readonly purposes: { readonly codes: readonly string[]; readonly ticketPattern: RegExp };
  readonly providers: ProvidersConfig;
  readonly telemetry: { readonly otlpEndpoint?: string; readonly logLevel: LogLevel };
  readonly drainSeconds: number;
  /** Notes that do not stop embedded mode (unknown `SEALPOST_*` variables); production refuses them. */
  readonly warnings: readonly string[];
}

const MODES = ['embedded', 'production'] as const;
/** Variables of the test harness (testkit, peers script), not settings of a service. */
export const TEST_HARNESS_PREFIXES = ['SEALPOST_TEST_', 'SEALPOST_PEERS_'] as const;

/**
 * Parses the configuration of one service from `SEALPOST_*` variables. Throws `ConfigError`
 * (`CONFIG_INVALID`) listing every problem; in production, every development stand-in is a problem.
 */
export function loadConfig(service: ServiceName, env: Env = process.env): SealpostConfig {
  if (!isServiceName(service)) {
    throw new ConfigError([`service: unknown service; expected one of ${SERVICE_NAMES.join(', ')}`]);
  }
  const r = new EnvReader(env);
  const mode: Mode = r.read('SEALPOST_MODE', oneOf(MODES)) ?? 'embedded';
  const production = mode === 'production';
  const warnings: string[] = [];

  for (const name of r.namesWithPrefix('SEALPOST_')) {
    if (isSettingName(name) || TEST_HARNESS_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    // A misspelt variable silently ignored is a setting silently defaulted: stop in production.
    if (production) r.problem(name, 'is not a Sealpost setting (misspelt?); see the configuration table');
    else warnings.push(`${name}: is not a Sealpost setting (misspelt?); ignored`);
  }

  const dataDir = path.resolve(r.read('SEALPOST_DATA_DIR', pathValue) ?? DEFAULT_DATA_DIR);
  const devCaDir = path.join(dataDir, 'dev-ca');
  const devIdentityDir = path.join(dataDir, 'dev-identity');
  const devDirs = [devCaDir, devIdentityDir, path.resolve(DEFAULT_DATA_DIR)];
  const isDevFile = (file: string): boolean => devDirs.some((dir) => isInside(file, dir));
  const file = (name: SettingName): string | undefined => {
    const value = r.read(name, pathValue);
    return value === undefined ? undefined : path.resolve(value);
  };

  // --- trust domain
  const td = r.read('SEALPOST_TRUST_DOMAIN', trustDomain);
  if (production && td === undefined) {
    r.require('SEALPOST_TRUST_DOMAIN', 'required in production: each environment has its own trust domain');
  }
  if (production && td === DEV_TRUST_DOMAIN) {
    r.problem('SEALPOST_TRUST_DOMAIN', `${DEV_TRUST_DOMAIN} is the dev trust domain; production needs its own`);
  }
  const resolvedTrustDomain = td ?? DEV_TRUST_DOMAIN;
  const spiffeNamespace = r.read('SEALPOST_SPIFFE_NAMESPACE', namespaceName);

  const devTokens = r.read('SEALPOST_DEV_TOKENS', booleanFlag) ?? !production;
  if (production && devTokens) {
    r.problem('SEALPOST_DEV_TOKENS', 'dev tokens are a development stand-in; production requires false');
  }

  // --- TLS
  const tlsFiles = {
    caFile: ['SEALPOST_TLS_CA_FILE', path.join(devCaDir, 'ca.pem')],
    certFile: ['SEALPOST_TLS_CERT_FILE', path.join(devCaDir, `${service}.pem`)],
    keyFile: ['SEALPOST_TLS_KEY_FILE', path.join(devCaDir, `${service}-key.pem`)],
  } as const;
  const tlsValues = {} as Record<keyof typeof tlsFiles, string>;
  let tlsDev = false;
  for (const [key, [name, devDefault]] of Object.entries(tlsFiles) as [
    keyof typeof tlsFiles,
    readonly [SettingName, string],
  ][]) {
    const value = file(name);
    if (production && value === undefined) {
      r.require(name, 'required in production (unset means the embedded dev CA)');
    } else if (production && value !== undefined && isDevFile(value)) {
      r.problem(
        name,
        "is a file of the embedded dev CA (under the data dir's dev-ca/ or ./.sealpost); production refuses it",
      );
    }
    if (value === undefined) tlsDev = true;
    tlsValues[key] = value ?? devDefault;
  }

  // --- gRPC
  const peers = {} as Record<ServiceName, string>;
  const listeners: [SettingName, string][] = [];
  let listen = '';
  let health = '';
  for (const peer of SERVICE_NAMES) {
    const port = SERVICE_GRPC_PORT[peer];
    const own = peer === service;
    const grpcDefault = !production ? `127.0.0.1:${port}` : own ? `0.0.0.0:${port}` : `sealpost-${peer}:${port}`;
    const healthDefault = `${production ? '0.0.0.0' : '127.0.0.1'}:${port + HEALTH_PORT_OFFSET}`;
    peers[peer] = r.read(grpcAddrSetting(peer), hostPort) ?? grpcDefault;
    const peerHealth = r.read(healthAddrSetting(peer), hostPort) ?? healthDefault;
    listeners.push([grpcAddrSetting(peer), peers[peer]], [healthAddrSetting(peer), peerHealth]);
    if (own) {
      listen = peers[peer];
      health = peerHealth;
    }
  }
  // Embedded runs every listener in one process: two on one address would fail late and confusingly.
  // In production only this service's own pair binds here.
  const binding = production
    ? listeners.filter(([name]) => name === grpcAddrSetting(service) || name === healthAddrSetting(service))
    : listeners;
  const seen = new Map<string, SettingName>();
  for (const [name, addr] of binding) {
    const other = seen.get(addr);
    if (other !== undefined) r.problem(name, `uses the same address as ${other}`);
    else seen.set(addr, name);
  }

  // --- bus
  const busKind = r.read('SEALPOST_BUS', oneOf(['embedded', 'nats'])) ?? (production ? 'nats' : 'embedded');
  const natsUser = r.read('SEALPOST_NATS_USER', tokenValue);
  const natsPasswordFile = file('SEALPOST_NATS_PASSWORD_FILE');
  const natsCaFile = file('SEALPOST_NATS_CA_FILE');
  const natsServers = r.read('SEALPOST_NATS_URL', urlList(['nats', 'tls']));
  const replicas = r.read('SEALPOST_NATS_STREAM_REPLICAS', wholeNumber(1, 5)) ?? (production ? 3 : 1);
  const maxAge = r.read('SEALPOST_NATS_STREAM_MAX_AGE_SECONDS', wholeNumber(60, 10 * 365 * 86400)) ?? 14 * 86400;
  pairedCredentials(r, 'SEALPOST_NATS_USER', natsUser, 'SEALPOST_NATS_PASSWORD_FILE', natsPasswordFile);
  let bus: BusConfig;
  if (busKind === 'embedded') {
    if (production) r.problem('SEALPOST_BUS', 'the embedded bus is a development stand-in; production requires nats');
    bus = { kind: 'embedded', file: path.join(dataDir, 'bus.sqlite') };
  } else {
    const servers = natsServers ?? (production ? undefined : ['nats://127.0.0.1:4222']);
    const tls = natsCaFile !== undefined || (servers ?? []).some((s) => s.startsWith('tls://'));
    if (production) {
      if (servers === undefined) r.require('SEALPOST_NATS_URL', 'required in production');
      else if (!tls) r.problem('SEALPOST_NATS_URL', 'production requires TLS: use tls:// or set SEALPOST_NATS_CA_FILE');
      if (natsUser === undefined)
        r.require('SEALPOST_NATS_USER', 'required in production: each service has its own NATS user');
      if (natsPasswordFile === undefined) r.require('SEALPOST_NATS_PASSWORD_FILE', 'required in production');
      if (natsCaFile !== undefined && isDevFile(natsCaFile)) {
        r.problem('SEALPOST_NATS_CA_FILE', 'is a file of the embedded dev CA; production refuses it');
      }
      if (replicas < 3) {
        r.problem(
          'SEALPOST_NATS_STREAM_REPLICAS',
          'production requires at least 3 (the audit stream must survive a node loss)',
        );
      }
    }
    bus = {
      kind: 'nats',
      servers: servers ?? [],
      ...(natsUser !== undefined && { user: natsUser }),
      ...(natsPasswordFile !== undefined && { passwordFile: natsPasswordFile }),
      ...(natsCaFile !== undefined && { caFile: natsCaFile }),
      tls,
      streamReplicas: replicas,
      streamMaxAgeSeconds: maxAge,
    };
  }

  // --- storage
  const storeKind = r.read('SEALPOST_STORE', oneOf(['sqlite', 'mongo'])) ?? (production ? 'mongo' : 'sqlite');
  const mongoUrl = r.read('SEALPOST_MONGO_URL', url(['mongodb', 'mongodb+srv'], { noPassword: true }));
  const mongoDatabase = r.read('SEALPOST_MONGO_DATABASE', tokenValue) ?? defaultDatabaseOf(service);
  const mongoUser = r.read('SEALPOST_MONGO_USER', tokenValue);
  const mongoPasswordFile = file('SEALPOST_MONGO_PASSWORD_FILE');
  pairedCredentials(r, 'SEALPOST_MONGO_USER', mongoUser, 'SEALPOST_MONGO_PASSWORD_FILE', mongoPasswordFile);
  let store: StoreConfig;
  if (storeKind === 'sqlite') {
    if (production) r.problem('SEALPOST_STORE', 'SQLite is a development stand-in; production requires mongo');
    store = { kind: 'sqlite', file: path.join(dataDir, `${service}.sqlite`) };
  } else {
    if (production && mongoUrl === undefined) r.require('SEALPOST_MONGO_URL', 'required in production');
    store = {
      kind: 'mongo',
      url: mongoUrl ?? 'mongodb://127.0.0.1:27017',
      database: mongoDatabase,
      ...(mongoUser !== undefined && { user: mongoUser }),
      ...(mongoPasswordFile !== undefined && { passwordFile: mongoPasswordFile }),
    };
  }

  // --- KMS and AWS
  const region = r.read('SEALPOST_AWS_REGION', awsRegion);
  const kmsKind = r.read('SEALPOST_KMS', oneOf(['local', 'aws'])) ?? (production ? 'aws' : 'local');
  const kmsEndpoint = r.read('SEALPOST_KMS_ENDPOINT', url(['https', 'http'], { noPassword: true }));
  const template = r.read('SEALPOST_KMS_KEY_ID_TEMPLATE', keyIdTemplate);
  const map = r.read('SEALPOST_KMS_KEY_MAP', keyMap);
  if (r.isSet('SEALPOST_KMS_KEY_ID_TEMPLATE') && r.isSet('SEALPOST_KMS_KEY_MAP')) {
    r.problem('SEALPOST_KMS_KEY_MAP', 'contradicts SEALPOST_KMS_KEY_ID_TEMPLATE; set only one');
  }
  let kms: KmsConfig;
  if (kmsKind === 'local') {
    if (production) r.problem('SEALPOST_KMS', 'the local keyring is a development stand-in; production requires aws');
    kms = { kind: 'local', keyringFile: path.join(dataDir, 'kms', 'keyring.json') };
  } else {
    if (region === undefined) r.require('SEALPOST_AWS_REGION', 'required when SEALPOST_KMS=aws');
    if (!r.isSet('SEALPOST_KMS_KEY_ID_TEMPLATE') && !r.isSet('SEALPOST_KMS_KEY_MAP')) {
      r.problem('SEALPOST_KMS_KEY_ID_TEMPLATE', 'required when SEALPOST_KMS=aws (or SEALPOST_KMS_KEY_MAP)');
    }
    if (production && kmsEndpoint?.startsWith('http://')) {
      r.problem('SEALPOST_KMS_ENDPOINT', 'production requires https (a plain-http endpoint is an emulator)');
    }
    kms = {
      kind: 'aws',
      region: region ?? '',
      ...(kmsEndpoint !== undefined && { endpoint: kmsEndpoint }),
      ...(template !== undefined && { keyIdTemplate: template }),
      ...(map !== undefined && { keyMap: map }),
    };
  }

  // --- audit tree heads
  const signingKeyId = r.read('SEALPOST_AUDIT_SIGNING_KEY_ID', kmsKeyId);
  const witnessFile = file('SEALPOST_AUDIT_WITNESS_FILE');
  const sthEveryEntries = r.read('SEALPOST_AUDIT_STH_EVERY_ENTRIES', wholeNumber(1, 1_000_000)) ?? 1000;
  const sthEverySeconds = r.read('SEALPOST_AUDIT_STH_EVERY_SECONDS', wholeNumber(1, 86_400)) ?? 60;
  const auditRetentionDays = r.read('SEALPOST_AUDIT_RETENTION_DAYS', wholeNumber(1, 36_500));
  if (service === 'audit') {
    if (signingKeyId !== undefined && kmsKind !== 'aws') {
      r.problem('SEALPOST_AUDIT_SIGNING_KEY_ID', 'names a KMS key, so it needs SEALPOST_KMS=aws');
    }
    if (production) {
      // The local Ed25519 file key would be a silent downgrade: anyone with the volume could forge heads.
      if (signingKeyId === undefined) {
        r.require('SEALPOST_AUDIT_SIGNING_KEY_ID', 'required in production: tree heads are signed by a KMS key');
      }
      // The data dir default would put the witness beside the service's state, often on a read-only image.
      if (witnessFile === undefined) {
        r.require(
          'SEALPOST_AUDIT_WITNESS_FILE',
          'required in production: a file on a durable volume outside the database',
        );
      } else if (isDevFile(witnessFile)) {
        r.problem('SEALPOST_AUDIT_WITNESS_FILE', 'is under ./.sealpost or a dev directory; production refuses it');
      }
    }
  }
  const audit: AuditConfig = {
    ...(signingKeyId !== undefined && { signingKeyId }),
    witnessFile: witnessFile ?? path.join(dataDir, 'audit', 'witness.jsonl'),
    sthEveryEntries,
    sthEverySeconds,
    ...(auditRetentionDays !== undefined && { retentionDays: auditRetentionDays }),
  };

  // --- contact vault
  const dedupeKey = r.read('SEALPOST_VAULT_DEDUPE_KEY', oneOf(['email', 'phone'])) ?? 'email';
  const phoneRegion = r.read('SEALPOST_VAULT_DEFAULT_PHONE_REGION', regionCode);
  const emailFolding = r.read('SEALPOST_VAULT_EMAIL_FOLDING', booleanFlag) ?? false;
  const q = (name: SettingName, limit: number, windowSeconds: number) =>
    r.read(name, quota) ?? { limit, windowSeconds };
  const quotas = {
    reveal: q('SEALPOST_VAULT_REVEAL_QUOTA', 20, 3600),
    find: q('SEALPOST_VAULT_FIND_QUOTA', 200, 3600),
    resolve: q('SEALPOST_VAULT_RESOLVE_QUOTA', 1_000_000, 3600),
    resolvePurpose: q('SEALPOST_VAULT_RESOLVE_PURPOSE_QUOTA', 200_000, 86_400),
  };
  const keyStoreFile = file('SEALPOST_VAULT_KEYSTORE_FILE');
  const keyStoreMongoUrl = r.read(
    'SEALPOST_VAULT_KEYSTORE_MONGO_URL',
    url(['mongodb', 'mongodb+srv'], { noPassword: true }),
  );
  const keyStoreDatabase = r.read('SEALPOST_VAULT_KEYSTORE_DATABASE', tokenValue);
  let keyStore: VaultConfig['keyStore'];
  if (store.kind === 'sqlite') {
    if (keyStoreMongoUrl !== undefined || keyStoreDatabase !== undefined) {
      r.problem(
        keyStoreMongoUrl !== undefined ? 'SEALPOST_VAULT_KEYSTORE_MONGO_URL' : 'SEALPOST_VAULT_KEYSTORE_DATABASE',
        'applies to SEALPOST_STORE=mongo only; use SEALPOST_VAULT_KEYSTORE_FILE with SQLite',
      );
    }
    const keyFile = keyStoreFile ?? path.join(dataDir, 'contact-vault-keys.sqlite');
    // The whole point of the key store: a copy of the contact store must never hold what decrypts it.
    if (keyFile === store.file) {
      r.problem('SEALPOST_VAULT_KEYSTORE_FILE', 'must not be the contact store file');
    }
    keyStore = { kind: 'sqlite', file: keyFile };
  } else {
    if (keyStoreFile !== undefined) {
      r.problem('SEALPOST_VAULT_KEYSTORE_FILE', 'applies to SEALPOST_STORE=sqlite only');
    }
    const database = keyStoreDatabase ?? `${store.database}_keys`;
    if (
      database === store.database &&
      (keyStoreMongoUrl === undefined || shareMongoServer(keyStoreMongoUrl, store.url))
    ) {
      r.problem('SEALPOST_VAULT_KEYSTORE_DATABASE', 'must not be the contact database on the same server');
    }
    keyStore = { kind: 'mongo', database, ...(keyStoreMongoUrl !== undefined && { url: keyStoreMongoUrl }) };
  }
  const retention = r.read('SEALPOST_VAULT_RETENTION_DAYS', retentionDays) ?? { tenants: {} };
  const retentionSweepEverySeconds =
    r.read('SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS', wholeNumber(1, 86_400)) ?? 3600;
  const receiptSigningKeyId = r.read('SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID', kmsKeyId);
  if (service === 'contact-vault' && production && receiptSigningKeyId === undefined) {
    r.require(
      'SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID',
      'required in production: erasure receipts are signed by a KMS key, not a local file key',
    );
  }
  if (receiptSigningKeyId !== undefined && kmsKind !== 'aws') {
    r.problem('SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID', 'names a KMS key, so it needs SEALPOST_KMS=aws');
  }
  // Three signing rounds at the default tree-head cadence (60 s): an erasure outlives one missed head.
  const auditProofWaitSeconds = r.read('SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS', wholeNumber(1, 3600)) ?? 180;
  const importBatchRows = r.read('SEALPOST_VAULT_IMPORT_BATCH_ROWS', wholeNumber(16, 16384)) ?? 4096;
  const vault: VaultConfig = {
    dedupeKey,
    ...(phoneRegion !== undefined && { defaultPhoneRegion: phoneRegion }),
    emailFolding,
    quotas,
    keyStore,
    retention,
    retentionSweepEverySeconds,
    ...(receiptSigningKeyId !== undefined && { receiptSigningKeyId }),
    auditProofWaitSeconds,
    importBatchRows,
  };

  // --- operator tokens
  const issuer = r.read('SEALPOST_JWT_ISSUER', url(['https', 'http'], { noPassword: true }));
  if (production && issuer === undefined) r.require('SEALPOST_JWT_ISSUER', 'required in production');
  if (production && issuer !== undefined && sameIssuer(issuer, DEV_JWT_ISSUER)) {
    r.problem('SEALPOST_JWT_ISSUER', 'is the embedded dev issuer; production refuses dev tokens');
  }
  const audience = r.read('SEALPOST_JWT_AUDIENCE', tokenValue) ?? 'sealpost';
  const jwksUrl = r.read('SEALPOST_JWKS_URL', url(['https', 'http'], { noPassword: true }));
  const jwksFile = file('SEALPOST_JWKS_FILE');
  if (r.isSet('SEALPOST_JWKS_URL') && r.isSet('SEALPOST_JWKS_FILE')) {
    r.problem('SEALPOST_JWKS_FILE', 'contradicts SEALPOST_JWKS_URL; set only one');
  }
  if (production) {
    if (!r.isSet('SEALPOST_JWKS_URL') && !r.isSet('SEALPOST_JWKS_FILE')) {
      r.problem(
        'SEALPOST_JWKS_URL',
        'required in production (or SEALPOST_JWKS_FILE); unset means the dev identity keys',
      );
    }
    if (jwksUrl?.startsWith('http://')) r.problem('SEALPOST_JWKS_URL', 'production requires https');
    if (jwksUrl !== undefined && isDevHost(new URL(jwksUrl).hostname)) {
      r.problem('SEALPOST_JWKS_URL', 'points at the embedded dev issuer; production refuses dev tokens');
    }
    if (jwksFile !== undefined && isDevFile(jwksFile)) {
      r.problem('SEALPOST_JWKS_FILE', "is the embedded dev identity's key set; production refuses dev tokens");
    }
  }
  const jwks: JwksSource =
    jwksUrl !== undefined
      ? { kind: 'url', url: jwksUrl }
      : { kind: 'file', file: jwksFile ?? path.join(devIdentityDir, 'jwks.json') };
  const stepUp = r.read('SEALPOST_STEP_UP_WINDOW_SECONDS', wholeNumber(1, 3600)) ?? 300;

  // --- purposes
  const codes = r.read('SEALPOST_PURPOSE_CODES', purposeCodes) ?? [...DEFAULT_PURPOSE_CODES];
  const ticket = r.read('SEALPOST_TICKET_PATTERN', ticketPattern) ?? new RegExp(DEFAULT_TICKET_PATTERN);

  // --- providers
  const mail = r.read('SEALPOST_MAIL_PROVIDER', oneOf(['outbox', 'ses'])) ?? (production ? 'ses' : 'outbox');
  const sms = r.read('SEALPOST_SMS_PROVIDER', oneOf(['outbox', 'sns'])) ?? (production ? 'sns' : 'outbox');
  const sesEndpoint = r.read('SEALPOST_SES_ENDPOINT', url(['https', 'http'], { noPassword: true }));
  const snsEndpoint = r.read('SEALPOST_SNS_ENDPOINT', url(['https', 'http'], { noPassword: true }));
  if (production && mail === 'outbox') {
    r.problem('SEALPOST_MAIL_PROVIDER', 'the outbox is a development stand-in; production requires ses');
  }
  if (production && sms === 'outbox') {
    r.problem('SEALPOST_SMS_PROVIDER', 'the outbox is a development stand-in; production requires sns');
  }
  if ((mail === 'ses' || sms === 'sns') && region === undefined) {
    r.require('SEALPOST_AWS_REGION', `required when SEALPOST_MAIL_PROVIDER=ses or SEALPOST_SMS_PROVIDER=sns`);
  }
  for (const [name, endpoint] of [
    ['SEALPOST_SES_ENDPOINT', sesEndpoint],
    ['SEALPOST_SNS_ENDPOINT', snsEndpoint],
  ] as const) {
    if (production && endpoint?.startsWith('http://'))
      r.problem(name, 'production requires https (a plain-http endpoint is an emulator)');
  }

  // --- telemetry and lifecycle
  const otlpEndpoint = r.read('SEALPOST_OTLP_ENDPOINT', url(['http', 'https'], { noPassword: true }));
  const logLevel = r.read('SEALPOST_LOG_LEVEL', oneOf(LOG_LEVELS)) ?? 'info';
  const drainSeconds = r.read('SEALPOST_DRAIN_SECONDS', wholeNumber(1, 600)) ?? 20;
  r.read('SEALPOST_SERVICE', serviceTag);

  if (r.list().length > 0) throw new ConfigError(r.list());

  return deepFreeze<SealpostConfig>({
    service,
    mode,
    dataDir,
    trustDomain: resolvedTrustDomain,
    spiffeId: `spiffe://${resolvedTrustDomain}/${service}`,
    ...(spiffeNamespace !== undefined ? { spiffeNamespace } : {}),
    tls: { ...tlsValues, dev: tlsDev },
    grpc: { listen, health, peers },
    bus,
    store,
    kms,
    audit,
    vault,
    auth: { jwtIssuer: issuer ?? DEV_JWT_ISSUER, jwtAudience: audience, jwks, stepUpWindowSeconds: stepUp, devTokens },
    purposes: { codes, ticketPattern: ticket },
    providers: {
      mail,
      sms,
      outboxDir: path.join(dataDir, 'outbox'),
      ...(region !== undefined && { awsRegion: region }),
      ...(sesEndpoint !== undefined && { sesEndpoint }),
      ...(snsEndpoint !== undefined && { snsEndpoint }),
    },
    telemetry: { ...(otlpEndpoint !== undefined && { otlpEndpoint }), logLevel },
    drainSeconds,
    warnings,
  });
}

function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function isDevHost(host: string): boolean {
  return host === DEV_TRUST_DOMAIN || host.endsWith(`.${DEV_TRUST_DOMAIN}`);
}

function sameIssuer(a: string, b: string): boolean {
  const strip = (s: string) => s.replace(/\/+$/, '').toLowerCase();
  return strip(a) === strip(b);
}

/** A user without its password file (or the reverse) is a half-finished secret mount. */
function pairedCredentials(
  r: EnvReader,
  userName: SettingName,
  user: string | undefined,
  fileName: SettingName,
  passwordFile: string | undefined,
): void {
  if (user !== undefined && passwordFile === undefined && !r.hasProblem(fileName)) {
    r.problem(fileName, `required when ${userName} is set`);
  }
  if (user === undefined && passwordFile !== undefined && !r.hasProblem(userName)) {
    r.problem(userName, `required when ${fileName} is set`);
  }
}

/**
 * Whether two MongoDB URLs name a server in common: the same scheme and at least one host, compared without user,
 * case, a trailing dot or the default port (`mongodb://Mongo:27017/` and `mongodb://u@mongo` are the same server).
 * Another name for the same machine (an alias, an IP address) cannot be seen from the URLs.
 */
function shareMongoServer(a: string, b: string): boolean {
  const servers = (url: string): { scheme: string; hosts: Set<string> } => {
    const match = /^(mongodb(?:\+srv)?):\/\/(?:[^@/]*@)?([^/?#]*)/i.exec(url);
    if (!match) return { scheme: url, hosts: new Set([url]) };
    const scheme = match[1]!.toLowerCase();
    const hosts = match[2]!.split(',').map((host) => {
      const name = host.toLowerCase().replace(/\.(?=:\d+$|$)/, '');
      return scheme === 'mongodb' && !/:\d+$/.test(name) ? `${name}:27017` : name;
    });
    return { scheme, hosts: new Set(hosts) };
  };
  const x = servers(a);
  const y = servers(b);
  return x.scheme === y.scheme && [...x.hosts].some((host) => y.hosts.has(host));
}
