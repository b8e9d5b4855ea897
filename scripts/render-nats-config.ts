/**
 * Writes the configuration of the TLS NATS test cluster (called by scripts/peers.sh).
 *
 *   tsx scripts/render-nats-config.ts --dir <peers dir> --nodes 3 --port 4223 --http-port 8223 --cluster-port 6223
 *
 * Node i (1-based) listens for clients on port+i-1 (TLS), for monitoring on http-port+i-1 and for cluster routes
 * on cluster-port+i-1, all on 127.0.0.1, and keeps JetStream state in `<dir>/nats-tls/node-<i>/jetstream`.
 * Every node has the same users and permissions (from packages/bus/src/topology.ts), so a client may connect to
 * any of them; three nodes make R3 streams possible, which production mode requires.
 * Reads `<dir>/nats-tls/users.json` (random passwords, including the route password; created with mode 0600 on
 * first run and kept after), writes `<dir>/nats-tls/node-<i>/nats.conf` (mode 0600) and prints their paths.
 * Certificates are expected in `<dir>/certs`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
// A root script, not a package: a relative import keeps the bus package's runtime dependencies
// (mongodb, better-sqlite3, …) out of this small generator.
import { renderNatsServerConfig, NATS_ADMIN_USER } from '../packages/bus/src/nats-permissions';
import { SERVICES, type ServiceName } from '../packages/bus/src/topology';

interface UsersFile {
  users: Record<ServiceName, { user: string; password: string }>;
  admin: { user: string; password: string };
  /** Credentials the nodes present to each other on the cluster routes. */
  route: { user: string; password: string };
}

const CLUSTER_NAME = 'sealpost-test';
const ROUTE_USER = 'route';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    nodes: { type: 'string', default: '3' },
    port: { type: 'string', default: '4223' },
    'http-port': { type: 'string', default: '8223' },
    'cluster-port': { type: 'string', default: '6223' },
  },
});
if (!values.dir) throw new Error('--dir <peers dir> is required');
const dir = resolve(values.dir);
const natsDir = join(dir, 'nats-tls');
mkdirSync(natsDir, { recursive: true, mode: 0o700 });

const secret = (): string => randomBytes(24).toString('base64url');
const usersPath = join(natsDir, 'users.json');
const users = loadOrCreateUsers(usersPath);

const nodes = Number(values.nodes);
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 5) throw new Error('--nodes must be 1..5');
const base = { port: Number(values.port), http: Number(values['http-port']), cluster: Number(values['cluster-port']) };
const routeUrl = (i: number): string =>
  `nats-route://${ROUTE_USER}:${users.route.password}@127.0.0.1:${base.cluster + i}`;

for (let i = 0; i < nodes; i++) {
  const nodeDir = join(natsDir, `node-${i + 1}`);
  mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
  const config = renderNatsServerConfig({
    port: base.port + i,
    httpPort: base.http + i,
    tls: {
      cert: join(dir, 'certs', 'server.pem'),
      key: join(dir, 'certs', 'server-key.pem'),
      ca: join(dir, 'certs', 'ca.pem'),
    },
    users: SERVICES.map((service) => ({ service, password: users.users[service].password })),
    storeDir: join(nodeDir, 'jetstream'),
    adminPassword: users.admin.password,
  });
  // JetStream clustering needs a unique server name per node and a named cluster; routes stay on loopback and
  // authenticate with the route password, so no other local process can join the cluster.
  const others = Array.from({ length: nodes }, (_, j) => j).filter((j) => j !== i);
  const cluster = [
    `server_name: ${JSON.stringify(`${CLUSTER_NAME}-${i + 1}`)}`,
    ...(nodes > 1
      ? [
          'cluster {',
          `  name: ${JSON.stringify(CLUSTER_NAME)}`,
          `  listen: ${JSON.stringify(`127.0.0.1:${base.cluster + i}`)}`,
          `  authorization { user: ${JSON.stringify(ROUTE_USER)}, password: ${JSON.stringify(users.route.password)}, timeout: 2 }`,
          `  routes: [${others.map((j) => JSON.stringify(routeUrl(j))).join(', ')}]`,
          '}',
        ]
      : []),
    '',
  ].join('\n');
  const file = join(nodeDir, 'nats.conf');
  writeSecret(file, `${config}${cluster}`);
  process.stdout.write(`${file}\n`);
}

function loadOrCreateUsers(path: string): UsersFile {
  const existing: Partial<UsersFile> = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as UsersFile) : {};
  // Keep passwords stable across runs (peers.json and running clients rely on them); add any new service.
  const result: UsersFile = {
    users: {} as UsersFile['users'],
    admin: existing.admin ?? { user: NATS_ADMIN_USER, password: secret() },
    route: existing.route ?? { user: ROUTE_USER, password: secret() },
  };
  for (const service of SERVICES) {
    result.users[service] = existing.users?.[service] ?? { user: service, password: secret() };
  }
  writeSecret(path, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600); // writeFileSync's mode applies only when it creates the file
}
