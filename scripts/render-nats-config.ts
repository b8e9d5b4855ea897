/**
 * Writes the TLS NATS test server's configuration (called by scripts/peers.sh).
 *
 *   tsx scripts/render-nats-config.ts --dir <peers dir> --port 4223 --http-port 8223
 *
 * Reads `<dir>/nats-tls/users.json` (random passwords; created with mode 0600 on first run and kept after),
 * writes `<dir>/nats-tls/nats.conf` (mode 0600). Certificates are expected in `<dir>/certs`.
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
}

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string', default: '4223' },
    'http-port': { type: 'string', default: '8223' },
  },
});
if (!values.dir) throw new Error('--dir <peers dir> is required');
const dir = resolve(values.dir);
const natsDir = join(dir, 'nats-tls');
mkdirSync(natsDir, { recursive: true, mode: 0o700 });

const secret = (): string => randomBytes(24).toString('base64url');
const usersPath = join(natsDir, 'users.json');
const users = loadOrCreateUsers(usersPath);

const config = renderNatsServerConfig({
  port: Number(values.port),
  httpPort: Number(values['http-port']),
  tls: {
    cert: join(dir, 'certs', 'server.pem'),
    key: join(dir, 'certs', 'server-key.pem'),
    ca: join(dir, 'certs', 'ca.pem'),
  },
  users: SERVICES.map((service) => ({ service, password: users.users[service].password })),
  storeDir: join(natsDir, 'jetstream'),
  adminPassword: users.admin.password,
});
writeSecret(join(natsDir, 'nats.conf'), config);
process.stdout.write(`${join(natsDir, 'nats.conf')}\n`);

function loadOrCreateUsers(path: string): UsersFile {
  const existing: Partial<UsersFile> = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as UsersFile) : {};
  // Keep passwords stable across runs (peers.json and running clients rely on them); add any new service.
  const result: UsersFile = {
    users: {} as UsersFile['users'],
    admin: existing.admin ?? { user: NATS_ADMIN_USER, password: secret() },
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
