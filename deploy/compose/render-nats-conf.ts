/**
 * The laptop stack's nats-server configuration (called by prepare.sh): the same per-service users and
 * permissions as production (renderNatsServerConfig from packages/bus), plus a 3-node cluster block,
 * because production mode refuses streams with fewer than 3 replicas.
 *
 *   tsx deploy/compose/render-nats-conf.ts <state dir>    (reads <state dir>/secrets/nats-*.password)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES, renderNatsServerConfig } from '../render-nats-values';

/** Paths inside the NATS containers (compose `secrets:` mount at /run/secrets/<name>). */
export function composeNatsConfig(passwordOf: (user: string) => string): string {
  const base = renderNatsServerConfig({
    host: '0.0.0.0',
    port: 4222,
    httpPort: 8222,
    tls: { cert: '/run/secrets/nats_server_cert', key: '/run/secrets/nats_server_key', ca: '/run/secrets/ca' },
    users: SERVICES.map((service) => ({ service, password: passwordOf(service) })),
    storeDir: '/data/jetstream',
    adminPassword: passwordOf('admin'),
  });
  return [
    base.trimEnd(),
    '# Laptop stack: one config for the three nodes; each container sets NATS_SERVER_NAME.',
    'server_name: $NATS_SERVER_NAME',
    'cluster {',
    '  name: "sealpost"',
    '  listen: "0.0.0.0:6222"',
    '  routes: ["nats-route://nats-1:6222", "nats-route://nats-2:6222", "nats-route://nats-3:6222"]',
    '}',
    '',
  ].join('\n');
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: render-nats-conf.ts <state dir>');
  const secrets = join(dir, 'secrets');
  const conf = composeNatsConfig((user) => readFileSync(join(secrets, `nats-${user}.password`), 'utf8').trim());
  writeFileSync(join(secrets, 'nats.conf'), conf, { mode: 0o644 });
}
