/**
 * NATS user permissions and the test server's configuration, generated from the bus topology table so the
 * broker enforces exactly what `publishPatterns` and `BUS_GRANTS` say. Allow lists are exclusive in NATS:
 * anything not listed is refused, so a service can neither forge another service's events nor read a stream
 * it was not granted.
 */
import { inboxPrefixFor } from './nats/connection-options';
import {
  BUS_GRANTS,
  DEAD_LETTER_STREAM,
  SERVICES,
  TREE_HEAD_STREAM,
  publishPatterns,
  streamNameOf,
  type ServiceName,
} from './topology';

/** One NATS user's permissions, in the shape of the nats-server `permissions` block. */
export interface NatsPermissions {
  readonly publish: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[] };
}

/** Thrown when a server configuration cannot be rendered safely; nothing is written. */
export class NatsConfigError extends Error {
  readonly code = 'NATS_CONFIG_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NatsConfigError';
  }
}

const JS_API = '$JS.API';

/**
 * Streams a service creates, updates and reads the info of: its own domain stream, the shared dead-letter
 * stream, and for `audit` the tree-head stream.
 */
export function ownedStreams(service: ServiceName): string[] {
  const streams = [streamNameOf(BUS_GRANTS[service].owns), DEAD_LETTER_STREAM];
  if (service === 'audit') streams.push(TREE_HEAD_STREAM);
  return streams;
}

/** Streams a service runs durable consumers on. */
export function consumedStreams(service: ServiceName): string[] {
  return BUS_GRANTS[service].consumes.map(streamNameOf);
}

/**
 * The permissions of one service's NATS user. Throws `NatsConfigError` for an unknown service.
 * Never grants stream purge or delete: the explicit deny also guards against a future broad allow.
 */
export function renderNatsPermissions(service: ServiceName): NatsPermissions {
  if (!Object.hasOwn(BUS_GRANTS, service)) throw new NatsConfigError('unknown service for NATS permissions');
  const publish = [...publishPatterns(service), `${JS_API}.INFO`];
  for (const stream of ownedStreams(service)) {
    for (const op of ['CREATE', 'UPDATE', 'INFO']) publish.push(`${JS_API}.STREAM.${op}.${stream}`);
  }
  for (const stream of consumedStreams(service)) {
    publish.push(
      `${JS_API}.STREAM.INFO.${stream}`,
      // Servers before 2.9 create ephemeral consumers on `CONSUMER.CREATE.<stream>`; 2.9+ append the
      // consumer name and optionally its filter subject, hence both the bare subject and `.>`.
      `${JS_API}.CONSUMER.CREATE.${stream}`,
      `${JS_API}.CONSUMER.CREATE.${stream}.>`,
      `${JS_API}.CONSUMER.DURABLE.CREATE.${stream}.>`,
      `${JS_API}.CONSUMER.INFO.${stream}.>`,
      `${JS_API}.CONSUMER.MSG.NEXT.${stream}.>`,
      `${JS_API}.CONSUMER.DELETE.${stream}.>`,
      `$JS.ACK.${stream}.>`,
    );
  }
  return {
    publish: {
      allow: [...new Set(publish)],
      deny: [`${JS_API}.STREAM.DELETE.>`, `${JS_API}.STREAM.PURGE.>`, `${JS_API}.STREAM.MSG.DELETE.>`],
    },
    // Replies (JetStream API answers, pull batches, publish acks) arrive on the service's OWN inbox prefix
    // (the bus connects with `inboxPrefix: _INBOX_<service>`), so no service can read another's replies; no
    // service subscribes to event subjects directly, which would bypass the stream's consumer grants.
    subscribe: { allow: [`${inboxPrefixFor(service)}.>`] },
  };
}

/** Inputs of the test/operator nats-server configuration. Paths are absolute. */
export interface NatsServerConfigInput {
  readonly port: number;
  readonly host?: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly users: readonly { readonly service: ServiceName; readonly password: string }[];
  readonly storeDir: string;
  readonly adminPassword: string;
  /** Optional HTTP monitoring port (for readiness checks); bound to the same host. */
  readonly httpPort?: number;
}

/** The name of the all-permissions user (scratch streams in tests, operators). */
export const NATS_ADMIN_USER = 'admin';

// Plain-bcrypt-free passwords only: nats-server treats a password starting with `$2` as a bcrypt hash, and
// a restricted alphabet keeps the config free of quoting surprises.
const PASSWORD = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * Renders the nats-server configuration text: TLS listener, JetStream store, one user per service with
 * generated permissions, plus `admin` with full permissions. Throws `NatsConfigError` on unsafe input.
 */
export function renderNatsServerConfig(input: NatsServerConfigInput): string {
  const host = input.host ?? '127.0.0.1';
  checkPort(input.port, 'port');
  if (input.httpPort !== undefined) checkPort(input.httpPort, 'httpPort');
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) throw new NatsConfigError('invalid listen host');
  for (const [what, path] of Object.entries({ ...input.tls, storeDir: input.storeDir })) checkPath(path, what);
  checkPassword(input.adminPassword, NATS_ADMIN_USER);

  const seen = new Set<string>();
  const users: string[] = [];
  for (const { service, password } of input.users) {
    if (!(SERVICES as readonly string[]).includes(service)) throw new NatsConfigError('unknown service user');
    if (seen.has(service)) throw new NatsConfigError(`duplicate NATS user ${service}`);
    seen.add(service);
    checkPassword(password, service);
    const p = renderNatsPermissions(service);
    users.push(
      [
        `    {`,
        `      user: ${q(service)}`,
        `      password: ${q(password)}`,
        `      permissions: {`,
        `        publish: { allow: ${list(p.publish.allow)}, deny: ${list(p.publish.deny)} }`,
        `        subscribe: { allow: ${list(p.subscribe.allow)} }`,
        `      }`,
        `    }`,
      ].join('\n'),
    );
  }
  // No permissions block: the admin user may do everything, including deleting scratch streams.
  users.push(`    { user: ${q(NATS_ADMIN_USER)}, password: ${q(input.adminPassword)} }`);

  return [
    '# Generated by scripts/render-nats-config.ts from packages/bus/src/topology.ts. Do not edit.',
    `listen: ${q(`${host}:${input.port}`)}`,
    ...(input.httpPort === undefined ? [] : [`http: ${q(`${host}:${input.httpPort}`)}`]),
    'jetstream {',
    `  store_dir: ${q(input.storeDir)}`,
    '}',
    'tls {',
    `  cert_file: ${q(input.tls.cert)}`,
    `  key_file: ${q(input.tls.key)}`,
    `  ca_file: ${q(input.tls.ca)}`,
    '  timeout: 5',
    '}',
    'authorization {',
    '  users: [',
    users.join('\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new NatsConfigError(`invalid ${what}`);
}

function checkPath(path: string, what: string): void {
  // Quotes, backslashes, `$` (variable references) and control characters could change the config's meaning.
  if (!path.startsWith('/') || /["\\$\p{Cc}]/u.test(path)) throw new NatsConfigError(`invalid path for ${what}`);
}

function checkPassword(password: string, user: string): void {
  if (!PASSWORD.test(password)) throw new NatsConfigError(`password for ${user} must be 16-128 of [A-Za-z0-9_-]`);
}

// Double-quoted strings are literal in the NATS config format: `$JS...` is not taken as a variable.
function q(value: string): string {
  return JSON.stringify(value);
}

function list(values: readonly string[]): string {
  return `[${values.map(q).join(', ')}]`;
}
