/**
 * The table of every `SEALPOST_*` variable: the README's configuration table is generated from it
 * (`pnpm exec tsx scripts/config-table.ts`), and `loadConfig` refuses in production any variable not in it.
 */
import { HEALTH_PORT_OFFSET, SERVICE_ENV_TOKEN, SERVICE_GRPC_PORT, SERVICE_NAMES, type ServiceName } from './services';

type ServiceToken = (typeof SERVICE_ENV_TOKEN)[ServiceName];

/** Name of one `SEALPOST_*` variable. */
export type SettingName =
  | (typeof STATIC_SETTINGS)[number]['name']
  | `SEALPOST_${ServiceToken}_GRPC_ADDR`
  | `SEALPOST_${ServiceToken}_HEALTH_ADDR`;

export interface SettingSpec {
  readonly name: SettingName;
  /** Human-readable default, per mode where it differs ("required" when there is none). */
  readonly default: string;
  readonly description: string;
  /** Services that read it; 'all' when every service does. */
  readonly services: 'all' | readonly ServiceName[];
  /** Settings groups, in table order. */
  readonly group: SettingGroup;
}

export type SettingGroup =
  | 'common'
  | 'tls'
  | 'grpc'
  | 'bus'
  | 'storage'
  | 'kms'
  | 'audit'
  | 'vault'
  | 'identity'
  | 'purposes'
  | 'providers'
  | 'telemetry';

export const DEV_TRUST_DOMAIN = 'sealpost.dev';
/** Issuer of the tokens the embedded identity service mints with its dev key; production refuses it. */
export const DEV_JWT_ISSUER = 'https://identity.sealpost.dev';
export const DEFAULT_DATA_DIR = './.sealpost';
export const DEFAULT_PURPOSE_CODES = [
  'support-request',
  'subject-access',
  'fraud-investigation',
  'legal-hold',
] as const;
export const DEFAULT_TICKET_PATTERN = '^[A-Z][A-Z0-9]{1,9}-[0-9]{1,9}$';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const ALL = 'all' as const;
const SIGNERS: readonly ServiceName[] = ['contact-vault', 'consent', 'audit', 'identity'];
const AWS_USERS: readonly ServiceName[] = ['contact-vault', 'consent', 'audit', 'identity', 'dispatch'];
// Why secrets are files: an env value is readable in /proc/<pid>/environ, inherited by every child
// process, shown by `kubectl describe`/`docker inspect` and copied into crash reports; a mounted secret
// file (mode 0400) is none of these and can be rotated without editing the pod spec.
const SECRET_FILE_NOTE =
  'Secrets are read from files, never from env values (env leaks to child processes, /proc and crash reports).';

const STATIC_SETTINGS = [
  // common
  {
    group: 'common',
    name: 'SEALPOST_MODE',
    default: '`embedded`',
    services: ALL,
    description: '`embedded` (one process, local stand-ins) or `production` (refuses every stand-in).',
  },
  {
    group: 'common',
    name: 'SEALPOST_SERVICE',
    default: 'required by the telemetry register entry',
    services: ALL,
    description:
      'Service name (`contact-vault`, `consent`, …) the `@sealpost/telemetry/register` entry reports as `sealpost-<service>`.',
  },
  {
    group: 'common',
    name: 'SEALPOST_DATA_DIR',
    default: '`./.sealpost`',
    services: ALL,
    description: 'Embedded-mode state: SQLite files, the bus, the local keyring, the dev CA, the outbox.',
  },
  {
    group: 'common',
    name: 'SEALPOST_TRUST_DOMAIN',
    default: 'embedded: `sealpost.dev`; production: required, not `sealpost.dev`',
    services: ALL,
    description: 'SPIFFE trust domain; peers are `spiffe://<trust domain>/<service>`.',
  },
  {
    group: 'common',
    name: 'SEALPOST_SPIFFE_NAMESPACE',
    default: 'unset: only `spiffe://<trust domain>/<service>` ids',
    services: ALL,
    description:
      'Kubernetes namespace of Sealpost workloads: also accept `spiffe://<trust domain>/ns/<namespace>/sa/<service>` ids (csi-driver-spiffe), from this namespace only.',
  },
  {
    group: 'common',
    name: 'SEALPOST_DEV_TOKENS',
    default: 'embedded: `true`; production: `false` (refused if `true`)',
    services: ALL,
    description: 'Accept operator tokens minted with the embedded dev key (`true`/`false`).',
  },
  {
    group: 'common',
    name: 'SEALPOST_DRAIN_SECONDS',
    default: '`20`',
    services: ALL,
    description: 'Graceful-drain budget after SIGTERM before open calls are cancelled (1–600).',
  },
  // tls
  {
    group: 'tls',
    name: 'SEALPOST_TLS_CA_FILE',
    default: 'embedded: `<data dir>/dev-ca/ca.pem`; production: required',
    services: ALL,
    description: 'Trust bundle for mutual TLS between services. Production refuses files of the dev CA.',
  },
  {
    group: 'tls',
    name: 'SEALPOST_TLS_CERT_FILE',
    default: 'embedded: `<data dir>/dev-ca/<service>.pem`; production: required',
    services: ALL,
    description: "This service's certificate (URI SAN `spiffe://<trust domain>/<service>`).",
  },
  {
    group: 'tls',
    name: 'SEALPOST_TLS_KEY_FILE',
    default: 'embedded: `<data dir>/dev-ca/<service>-key.pem`; production: required',
    services: ALL,
    description: 'Private key of that certificate.',
  },
  // bus
  {
    group: 'bus',
    name: 'SEALPOST_BUS',
    default: 'embedded: `embedded`; production: `nats`',
    services: ALL,
    description: '`embedded` (durable in-process bus in SQLite; refused in production) or `nats` (JetStream).',
  },
  {
    group: 'bus',
    name: 'SEALPOST_NATS_URL',
    default: 'embedded: `nats://127.0.0.1:4222`; production: required',
    services: ALL,
    description:
      'NATS server URL(s), comma-separated. Production requires TLS (`tls://` or a CA file); credentials never in the URL.',
  },
  {
    group: 'bus',
    name: 'SEALPOST_NATS_USER',
    default: 'production: required',
    services: ALL,
    description: "This service's NATS user (permissions limited to its own subjects).",
  },
  {
    group: 'bus',
    name: 'SEALPOST_NATS_PASSWORD_FILE',
    default: 'production: required',
    services: ALL,
    description: `File holding the NATS password. ${SECRET_FILE_NOTE}`,
  },
  {
    group: 'bus',
    name: 'SEALPOST_NATS_CA_FILE',
    default: 'unset (system roots)',
    services: ALL,
    description: 'Trust bundle for the NATS server certificate; setting it turns TLS on.',
  },
  {
    group: 'bus',
    name: 'SEALPOST_NATS_STREAM_REPLICAS',
    default: 'embedded: `1`; production: `3` (fewer refused)',
    services: ALL,
    description: 'Replicas of the streams a service creates (1–5).',
  },
  {
    group: 'bus',
    name: 'SEALPOST_NATS_STREAM_MAX_AGE_SECONDS',
    default: '`1209600` (14 days)',
    services: ALL,
    description: 'Max age of messages in the streams a service creates (≥ 60).',
  },
  // storage
  {
    group: 'storage',
    name: 'SEALPOST_STORE',
    default: 'embedded: `sqlite`; production: `mongo`',
    services: ALL,
    description: '`sqlite` (one file per service under the data dir; refused in production) or `mongo`.',
  },
  {
    group: 'storage',
    name: 'SEALPOST_MONGO_URL',
    default: 'embedded: `mongodb://127.0.0.1:27017`; production: required',
    services: ALL,
    description: 'MongoDB connection string (`mongodb://` or `mongodb+srv://`), without a password.',
  },
  {
    group: 'storage',
    name: 'SEALPOST_MONGO_DATABASE',
    default: '`sealpost_<service>` (e.g. `sealpost_contact_vault`)',
    services: ALL,
    description: "This service's database; no service reads another's.",
  },
  {
    group: 'storage',
    name: 'SEALPOST_MONGO_USER',
    default: 'unset',
    services: ALL,
    description: 'MongoDB user of this service (needs `SEALPOST_MONGO_PASSWORD_FILE`).',
  },
  {
    group: 'storage',
    name: 'SEALPOST_MONGO_PASSWORD_FILE',
    default: 'unset',
    services: ALL,
    description: `File holding the MongoDB password. ${SECRET_FILE_NOTE}`,
  },
  // kms
  {
    group: 'kms',
    name: 'SEALPOST_KMS',
    default: 'embedded: `local`; production: `aws`',
    services: SIGNERS,
    description: '`local` (keyring file under the data dir, mode 0600; refused in production) or `aws` (AWS KMS).',
  },
  {
    group: 'kms',
    name: 'SEALPOST_KMS_ENDPOINT',
    default: 'unset (AWS default)',
    services: SIGNERS,
    description: 'KMS endpoint override (VPC endpoint, or a local KMS emulator in tests).',
  },
  {
    group: 'kms',
    name: 'SEALPOST_AWS_REGION',
    default: 'required with `aws`, `ses` or `sns`',
    services: AWS_USERS,
    description: 'AWS region for KMS, SES and SNS.',
  },
  {
    group: 'kms',
    name: 'SEALPOST_KMS_KEY_ID_TEMPLATE',
    default: 'one of this or the key map, with `aws`',
    services: SIGNERS,
    description: 'Per-tenant KMS key id with a `{tenant}` placeholder, e.g. `alias/sealpost-{tenant}`.',
  },
  {
    group: 'kms',
    name: 'SEALPOST_KMS_KEY_MAP',
    default: 'one of this or the template, with `aws`',
    services: SIGNERS,
    description: 'Per-tenant KMS keys: `tenant=keyId,tenant=keyId`.',
  },
  // audit
  {
    group: 'audit',
    name: 'SEALPOST_AUDIT_SIGNING_KEY_ID',
    default: 'embedded: unset (Ed25519 file key under the data dir); production: required',
    services: ['audit'],
    description:
      'KMS key id, ARN or alias of the ECC_NIST_P256 SIGN_VERIFY key that signs tree heads (ES256); needs `SEALPOST_KMS=aws`.',
  },
  {
    group: 'audit',
    name: 'SEALPOST_AUDIT_WITNESS_FILE',
    default: 'embedded: `<data dir>/audit/witness.jsonl`; production: required',
    services: ['audit'],
    description:
      'File (JSON lines, fsynced) that receives every signed tree head, on a durable volume outside the database.',
  },
  {
    group: 'audit',
    name: 'SEALPOST_AUDIT_STH_EVERY_ENTRIES',
    default: '`1000`',
    services: ['audit'],
    description: 'Sign a tree head after this many appended entries (1–1000000).',
  },
  {
    group: 'audit',
    name: 'SEALPOST_AUDIT_STH_EVERY_SECONDS',
    default: '`60`',
    services: ['audit'],
    description: 'Sign a tree head at least this often, also when idle (1–86400).',
  },
  {
    group: 'audit',
    name: 'SEALPOST_AUDIT_RETENTION_DAYS',
    default: 'unset (keep the log forever)',
    services: ['audit'],
    description:
      'Prune the bytes of audit entries older than this many days (1–36500), hourly, by the appender lease holder; tree nodes and signed heads stay, so what remains still verifies.',
  },
  // vault
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_DEDUPE_KEY',
    default: '`email`',
    services: ['contact-vault'],
    description: 'Field that identifies a person for de-duplication: `email` or `phone`.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_DEFAULT_PHONE_REGION',
    default: 'unset (numbers must be international, `+…`)',
    services: ['contact-vault'],
    description:
      'ISO 3166-1 alpha-2 region for national-format phone numbers (e.g. `GB`). Changing it needs an index rotation.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_EMAIL_FOLDING',
    default: '`false`',
    services: ['contact-vault'],
    description: 'Fold provider aliases (gmail dots, `+tags`) before indexing. Changing it needs an index rotation.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_REVEAL_QUOTA',
    default: '`20/3600`',
    services: ['contact-vault'],
    description:
      'Reveals and exports per principal per window, one limit shared by every replica: `<count>/<window seconds>`.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_FIND_QUOTA',
    default: '`200/3600`',
    services: ['contact-vault'],
    description: 'Lookups per principal per window, one limit shared by every replica: `<count>/<window seconds>`.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_RESOLVE_QUOTA',
    default: '`1000000/3600`',
    services: ['contact-vault'],
    description:
      'Addresses resolved per calling service per window, one limit shared by every replica: `<count>/<window seconds>`.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_RESOLVE_PURPOSE_QUOTA',
    default: '`200000/86400`',
    services: ['contact-vault'],
    description:
      'Addresses resolved per purpose (campaign or message id) per window, one limit shared by every replica: `<count>/<window seconds>`.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_KEYSTORE_FILE',
    default: '`<data dir>/contact-vault-keys.sqlite`',
    services: ['contact-vault'],
    description:
      'SQLite key store (wrapped data keys): put it on a volume with a short backup retention. Must differ from the contact store.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_KEYSTORE_MONGO_URL',
    default: 'unset: the contact store server',
    services: ['contact-vault'],
    description: 'MongoDB server of the key store (its own cluster/backup policy); no password in the URL.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_KEYSTORE_DATABASE',
    default: '`<contact database>_keys`',
    services: ['contact-vault'],
    description: 'MongoDB database of the key store; must differ from the contact database on the same server.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_RETENTION_DAYS',
    default: 'unset (no retention sweep)',
    services: ['contact-vault'],
    description:
      'Erase contacts with no activity for this many days: `<days>` for every tenant, or `t1=365,t2=30` per tenant. The vault sweeps on a schedule, one replica at a time (a lease).',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS',
    default: '`3600`',
    services: ['contact-vault'],
    description:
      'How often the replica holding the retention lease sweeps (1–86400), when `SEALPOST_VAULT_RETENTION_DAYS` is set.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID',
    default: 'embedded: unset (local Ed25519 file key); production: required',
    services: ['contact-vault'],
    description:
      'KMS key id, ARN or alias of the ECC_NIST_P256 SIGN_VERIFY key that signs erasure receipts (ES256); needs `SEALPOST_KMS=aws`. Production refuses the local file key.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS',
    default: '`180`',
    services: ['contact-vault'],
    description:
      'How long an erasure waits for its audit entry to be appended and covered by a signed tree head (the inclusion proof its receipt carries) before it fails with `AUDIT_UNAVAILABLE` (1–3600); keep it above `SEALPOST_AUDIT_STH_EVERY_SECONDS`. Erasing the same contact again resumes it.',
  },
  {
    group: 'vault',
    name: 'SEALPOST_VAULT_IMPORT_BATCH_ROWS',
    default: '`4096`',
    services: ['contact-vault'],
    description:
      "Rows `ImportContacts` looks up, seals and writes together, in one transaction per store (16–16384). Larger batches import faster (fewer commits and lookups); each batch also holds the vault's thread and its write lock for longer (about 40 ms per 1,000 rows on 2 cores), which other calls to the same replica wait out.",
  },
  // identity
  {
    group: 'identity',
    name: 'SEALPOST_JWT_ISSUER',
    default: 'embedded: `https://identity.sealpost.dev`; production: required',
    services: ALL,
    description:
      'Pinned `iss` of operator tokens (the identity service or an external OIDC issuer). Production refuses the dev issuer.',
  },
  {
    group: 'identity',
    name: 'SEALPOST_JWT_AUDIENCE',
    default: '`sealpost`',
    services: ALL,
    description: 'Pinned `aud` of operator tokens.',
  },
  {
    group: 'identity',
    name: 'SEALPOST_JWKS_URL',
    default: 'production: this (https) or the file',
    services: ALL,
    description: 'Where verification keys are fetched (JWKS). Exclusive with `SEALPOST_JWKS_FILE`.',
  },
  {
    group: 'identity',
    name: 'SEALPOST_JWKS_FILE',
    default: 'embedded: `<data dir>/dev-identity/jwks.json`',
    services: ALL,
    description: "JWKS read from a file. Production refuses the dev identity's file.",
  },
  {
    group: 'identity',
    name: 'SEALPOST_STEP_UP_WINDOW_SECONDS',
    default: '`300`',
    services: ALL,
    description: 'How recent MFA must be for reveal, export, erase, key rotation and role changes (1–3600).',
  },
  // purposes
  {
    group: 'purposes',
    name: 'SEALPOST_PURPOSE_CODES',
    default: '`support-request,subject-access,fraud-investigation,legal-hold`',
    services: ['contact-vault', 'dispatch'],
    description: 'Comma list of purpose codes a reveal/resolve may state (lower-case, `a-z0-9-`).',
  },
  {
    group: 'purposes',
    name: 'SEALPOST_TICKET_PATTERN',
    default: '`^[A-Z][A-Z0-9]{1,9}-[0-9]{1,9}$`',
    services: ['contact-vault', 'dispatch'],
    description: 'Anchored regex for the optional ticket reference; must not admit free text (spaces, `@`, `+`).',
  },
  // providers
  {
    group: 'providers',
    name: 'SEALPOST_MAIL_PROVIDER',
    default: 'embedded: `outbox`; production: `ses`',
    services: ['dispatch'],
    description: '`outbox` (writes mail under the data dir; refused in production) or `ses` (Amazon SES v2).',
  },
  {
    group: 'providers',
    name: 'SEALPOST_SMS_PROVIDER',
    default: 'embedded: `outbox`; production: `sns`',
    services: ['dispatch'],
    description: '`outbox` (refused in production) or `sns` (Amazon SNS).',
  },
  {
    group: 'providers',
    name: 'SEALPOST_SES_ENDPOINT',
    default: 'unset (AWS default)',
    services: ['dispatch'],
    description: 'SES endpoint override (VPC endpoint or emulator).',
  },
  {
    group: 'providers',
    name: 'SEALPOST_SNS_ENDPOINT',
    default: 'unset (AWS default)',
    services: ['dispatch'],
    description: 'SNS endpoint override (VPC endpoint or test endpoint).',
  },
  // telemetry
  {
    group: 'telemetry',
    name: 'SEALPOST_OTLP_ENDPOINT',
    default: 'unset (export off)',
    services: ALL,
    description: 'OTLP/HTTP base URL (e.g. `http://otel-collector:4318`); traces and metrics are exported when set.',
  },
  {
    group: 'telemetry',
    name: 'SEALPOST_LOG_LEVEL',
    default: '`info`',
    services: ALL,
    description: `Log level: ${LOG_LEVELS.map((l) => `\`${l}\``).join(', ')}.`,
  },
] as const satisfies readonly (Omit<SettingSpec, 'name'> & { name: `SEALPOST_${string}` })[];

/** Per-service listener rows, generated so that the six services cannot drift apart. */
function serviceAddressSettings(): SettingSpec[] {
  return SERVICE_NAMES.flatMap((service) => {
    const token = SERVICE_ENV_TOKEN[service];
    const port = SERVICE_GRPC_PORT[service];
    return [
      {
        group: 'grpc',
        name: `SEALPOST_${token}_GRPC_ADDR`,
        default: `embedded: \`127.0.0.1:${port}\`; production: \`0.0.0.0:${port}\` in \`${service}\`, \`sealpost-${service}:${port}\` elsewhere`,
        description: `\`host:port\` where \`${service}\` serves gRPC (mutual TLS) and where its callers dial it.`,
        services: 'all',
      },
      {
        group: 'grpc',
        name: `SEALPOST_${token}_HEALTH_ADDR`,
        default: `embedded: \`127.0.0.1:${port + HEALTH_PORT_OFFSET}\`; production: \`0.0.0.0:${port + HEALTH_PORT_OFFSET}\``,
        description: `Health-only gRPC listener of \`${service}\` for kubelet probes (no client certificate).`,
        services: [service],
      },
    ] satisfies SettingSpec[];
  });
}

const GROUP_ORDER: readonly SettingGroup[] = [
  'common',
  'tls',
  'grpc',
  'bus',
  'storage',
  'kms',
  'audit',
  'vault',
  'identity',
  'purposes',
  'providers',
  'telemetry',
];

/** Every setting, in README order. */
export const SETTINGS: readonly SettingSpec[] = Object.freeze(
  [...(STATIC_SETTINGS as readonly SettingSpec[]), ...serviceAddressSettings()]
    .sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group))
    .map((spec) =>
      Object.freeze({ ...spec, services: spec.services === 'all' ? 'all' : Object.freeze([...spec.services]) }),
    ),
);

const SETTING_NAMES: ReadonlySet<string> = new Set(SETTINGS.map((spec) => spec.name));

export function isSettingName(name: string): name is SettingName {
  return SETTING_NAMES.has(name);
}

export function grpcAddrSetting(service: ServiceName): SettingName {
  return `SEALPOST_${SERVICE_ENV_TOKEN[service]}_GRPC_ADDR` as SettingName;
}

export function healthAddrSetting(service: ServiceName): SettingName {
  return `SEALPOST_${SERVICE_ENV_TOKEN[service]}_HEALTH_ADDR` as SettingName;
}
