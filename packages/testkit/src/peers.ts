import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Peers started by `scripts/peers.sh up` (and the machine's NATS), by their key in `.peers/peers.json`. */
export const PEER_NAMES = ['nats', 'natsTls', 'mongo', 'kms', 'ses', 'natsCli'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export interface NatsCredentials {
  readonly user: string;
  readonly password: string;
}

/** What `loadPeers()` returns: only the peers that are configured. */
export interface Peers {
  /** The machine's NATS 2.9.10 (plain, no auth). */
  readonly nats?: { readonly url: string };
  /**
   * Current nats-server over TLS, a 3-node JetStream cluster (R3 streams possible); one user per Sealpost service
   * plus `admin` (full permissions). `url` is the first node; `urls` lists every node.
   */
  readonly natsTls?: {
    readonly url: string;
    readonly urls?: readonly string[];
    readonly ca: string;
    readonly users: Readonly<Record<string, NatsCredentials>>;
    readonly admin: NatsCredentials;
  };
  /** FerretDB (MongoDB wire protocol). */
  readonly mongo?: { readonly url: string };
  readonly kms?: { readonly endpoint: string; readonly region: string };
  readonly ses?: { readonly endpoint: string };
  /** Path of the `nats` CLI binary. */
  readonly natsCli?: string;
}

/** Thrown when a test needs a peer that is not configured or not answering. */
export class PeerMissingError extends Error {
  readonly code = 'PEER_MISSING';
  constructor(
    readonly peer: string,
    detail = 'run `pnpm peers up`',
  ) {
    super(`peer ${peer} missing: ${detail}`);
    this.name = 'PeerMissingError';
  }
}

/** Thrown when `.peers/peers.json` exists but cannot be read as a peers file. */
export class PeerConfigError extends Error {
  readonly code = 'PEER_CONFIG_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeerConfigError';
  }
}

/** The repository root (this file is packages/testkit/src/peers.ts). */
export const REPO_ROOT = resolve(__dirname, '../../..');

const MACHINE_NATS_URL = 'nats://127.0.0.1:4222';

/** The peers file: `SEALPOST_TEST_PEERS_FILE`, else `<repo>/.peers/peers.json`. */
export function peersFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.SEALPOST_TEST_PEERS_FILE || resolve(REPO_ROOT, '.peers/peers.json');
}

/**
 * Reads the peers file (absent → no peers but the machine's NATS) and applies overrides:
 * `SEALPOST_TEST_NATS_URL`, `SEALPOST_TEST_NATS_TLS_URL`, `SEALPOST_TEST_MONGO_URL`, `SEALPOST_TEST_KMS_ENDPOINT`
 * (+ `SEALPOST_TEST_KMS_REGION`), `SEALPOST_TEST_SES_ENDPOINT`, `SEALPOST_TEST_NATS_CLI`. An override of `none`
 * marks that peer missing. Throws PeerConfigError on an unreadable peers file.
 */
export function loadPeers(env: NodeJS.ProcessEnv = process.env): Peers {
  const file = peersFile(env);
  let raw: string | undefined;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new PeerConfigError('cannot read peers file', { cause: error });
  }
  const fromFile = raw === undefined ? {} : parsePeers(raw);
  const peers: { -readonly [K in PeerName]?: Peers[K] } = { nats: { url: MACHINE_NATS_URL }, ...fromFile };

  const override = (name: string, apply: (value: string) => void, remove: () => void): void => {
    const value = env[name];
    if (value === undefined || value === '') return;
    if (value === 'none') remove();
    else apply(value);
  };
  override(
    'SEALPOST_TEST_NATS_URL',
    (url) => (peers.nats = { url }),
    () => delete peers.nats,
  );
  override(
    'SEALPOST_TEST_NATS_TLS_URL',
    // Credentials and CA only come from the peers file; the override moves the address.
    (url) => peers.natsTls && (peers.natsTls = { ...peers.natsTls, url }),
    () => delete peers.natsTls,
  );
  override(
    'SEALPOST_TEST_MONGO_URL',
    (url) => (peers.mongo = { url }),
    () => delete peers.mongo,
  );
  override(
    'SEALPOST_TEST_KMS_ENDPOINT',
    (endpoint) => (peers.kms = { endpoint, region: env.SEALPOST_TEST_KMS_REGION || peers.kms?.region || 'eu-west-1' }),
    () => delete peers.kms,
  );
  override(
    'SEALPOST_TEST_SES_ENDPOINT',
    (endpoint) => (peers.ses = { endpoint }),
    () => delete peers.ses,
  );
  override(
    'SEALPOST_TEST_NATS_CLI',
    (path) => (peers.natsCli = path),
    () => delete peers.natsCli,
  );
  return peers;
}

function parsePeers(raw: string): Peers {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new PeerConfigError('peers file is not JSON; rerun `pnpm peers up`', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PeerConfigError('peers file must hold a JSON object');
  }
  const peers = value as Record<string, unknown>;
  const str = (v: unknown, what: string): void => {
    if (typeof v !== 'string' || v === '') throw new PeerConfigError(`peers file: ${what} must be a non-empty string`);
  };
  const obj = (v: unknown, what: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null) throw new PeerConfigError(`peers file: ${what} must be an object`);
    return v as Record<string, unknown>;
  };
  if (peers.nats !== undefined) str(obj(peers.nats, 'nats').url, 'nats.url');
  if (peers.natsTls !== undefined) {
    const t = obj(peers.natsTls, 'natsTls');
    str(t.url, 'natsTls.url');
    if (t.urls !== undefined) {
      if (!Array.isArray(t.urls)) throw new PeerConfigError('peers file: natsTls.urls must be an array');
      t.urls.forEach((u, i) => str(u, `natsTls.urls[${i}]`));
    }
    str(t.ca, 'natsTls.ca');
    const admin = obj(t.admin, 'natsTls.admin');
    str(admin.user, 'natsTls.admin.user');
    str(admin.password, 'natsTls.admin.password');
    for (const [name, creds] of Object.entries(obj(t.users, 'natsTls.users'))) {
      str(obj(creds, `natsTls.users.${name}`).password, `natsTls.users.${name}.password`);
    }
  }
  if (peers.mongo !== undefined) str(obj(peers.mongo, 'mongo').url, 'mongo.url');
  if (peers.kms !== undefined) str(obj(peers.kms, 'kms').endpoint, 'kms.endpoint');
  if (peers.ses !== undefined) str(obj(peers.ses, 'ses').endpoint, 'ses.endpoint');
  if (peers.natsCli !== undefined) str(peers.natsCli, 'natsCli');
  return peers as Peers;
}

/** The configuration of one peer; throws PeerMissingError when it is not configured. */
export function requirePeer<N extends PeerName>(name: N, env: NodeJS.ProcessEnv = process.env): NonNullable<Peers[N]> {
  const peer = loadPeers(env)[name];
  if (peer === undefined) throw new PeerMissingError(name);
  return peer as NonNullable<Peers[N]>;
}

/**
 * Connection options for the TLS NATS peer as `user` (a service name or `admin`), in the shape
 * `@nats-io/transport-node`'s `connect()` takes. Throws PeerMissingError.
 */
export function natsTlsConnectOptions(
  user: string,
  env: NodeJS.ProcessEnv = process.env,
): { servers: string; user: string; pass: string; tls: { caFile: string } } {
  const tls = requirePeer('natsTls', env);
  const creds = user === tls.admin.user ? tls.admin : tls.users[user];
  if (!creds) throw new PeerMissingError('natsTls', `no NATS user ${user} in the peers file`);
  return { servers: tls.url, user: creds.user, pass: creds.password, tls: { caFile: tls.ca } };
}

const DEFAULT_PORTS: Record<string, number> = { nats: 4222, tls: 4222, mongodb: 27017, http: 80, https: 443 };

/** Host and port of the first server in a peer URL (`mongodb://a:1,b:2/` → a:1). */
export function addressOf(url: string): { host: string; port: number } | undefined {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/,?]+)(?::(\d+))?/i.exec(url);
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : DEFAULT_PORTS[m[1]!.toLowerCase()];
  return port === undefined ? undefined : { host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

function urlOf(peers: Peers, name: PeerName): string | undefined {
  switch (name) {
    case 'nats':
      return peers.nats?.url;
    case 'natsTls':
      return peers.natsTls?.url;
    case 'mongo':
      return peers.mongo?.url;
    case 'kms':
      return peers.kms?.endpoint;
    case 'ses':
      return peers.ses?.endpoint;
    case 'natsCli':
      return undefined;
  }
}

// describe() callbacks are synchronous, so the reachability probe is too: a child node process tries TCP.
const PROBE = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});
s.setTimeout(1500,()=>process.exit(1));s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));`;
const probeCache = new Map<string, boolean>();

function reachable(host: string, port: number): boolean {
  const key = `${host}:${port}`;
  let open = probeCache.get(key);
  if (open === undefined) {
    const result = spawnSync(process.execPath, ['-e', PROBE, host, String(port)], { timeout: 3000, stdio: 'ignore' });
    open = result.status === 0;
    probeCache.set(key, open);
  }
  return open;
}

/** True when the peer is configured and answers on its port (natsCli: the binary is executable). Cached per file. */
export function peerAvailable(name: PeerName, env: NodeJS.ProcessEnv = process.env): boolean {
  const peers = loadPeers(env);
  if (name === 'natsCli') {
    if (!peers.natsCli) return false;
    try {
      accessSync(peers.natsCli, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  const url = urlOf(peers, name);
  const address = url === undefined ? undefined : addressOf(url);
  return address !== undefined && reachable(address.host, address.port);
}

/** True under CI (`CI=true` or `CI=1`), where a missing peer fails instead of skipping. */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

export type PeerGate =
  | { readonly action: 'run' }
  | { readonly action: 'fail'; readonly missing: readonly PeerName[] }
  | { readonly action: 'skip'; readonly missing: readonly PeerName[]; readonly notice: string };

/** Decides what a suite needing `peers` does; pure, so the policy itself is unit-tested. */
export function decidePeerGate(
  peers: readonly PeerName[],
  title: string,
  available: (name: PeerName) => boolean,
  ci: boolean,
): PeerGate {
  const missing = peers.filter((name) => !available(name));
  if (missing.length === 0) return { action: 'run' };
  if (ci) return { action: 'fail', missing };
  return { action: 'skip', missing, notice: `peer ${missing.join(', ')} missing: skipped ${title}` };
}

/**
 * `describe` that needs real peers. All available → runs. A peer missing → under CI the suite FAILS with a
 * test naming the peer; elsewhere the suite is skipped and `peer <name> missing: skipped <title>` is printed.
 */
export function describeWithPeer(needs: PeerName | readonly PeerName[], title: string, fn: () => void): void {
  const names = typeof needs === 'string' ? [needs] : needs;
  const gate = decidePeerGate(names, title, (name) => peerAvailable(name), isCi());
  if (gate.action === 'run') {
    describe(title, fn);
  } else if (gate.action === 'fail') {
    describe(title, () => {
      it(`needs peer ${gate.missing.join(', ')}`, () => {
        throw new PeerMissingError(
          gate.missing.join(', '),
          'not configured or not answering under CI=true (run `pnpm peers up`)',
        );
      });
    });
  } else {
    console.warn(gate.notice);
    // Skipped only outside CI, with the notice above naming the missing peer; under CI=true it fails (above).
    // The body is not evaluated: it may read peer settings that do not exist.
    describe.skip(title, () => {
      it(`needs peer ${gate.missing.join(', ')}`, () => undefined);
    });
  }
}
