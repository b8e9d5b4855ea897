/**
 * A service's bus handle from its validated configuration: the embedded SQLite bus, or NATS JetStream with TLS,
 * its own user and the password read from its file. Used by every service's standalone process.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SealpostConfig } from '@sealpost/config';
import { EmbeddedBus } from './embedded/embedded-bus';
import { NatsServiceBus } from './nats/nats-bus';
import type { ServiceBus } from './port';

export interface ConnectedBus {
  readonly bus: ServiceBus;
  /** Closes the handle and whatever it opened (the embedded store, the NATS connection). */
  close(): Promise<void>;
}

export async function connectServiceBus(config: SealpostConfig): Promise<ConnectedBus> {
  if (config.bus.kind === 'embedded') {
    await mkdir(path.dirname(config.bus.file), { recursive: true });
    const shared = EmbeddedBus.open(config.bus.file);
    const bus = shared.forService(config.service);
    return {
      bus,
      close: async () => {
        await bus.close();
        await shared.close();
      },
    };
  }
  const b = config.bus;
  const pass = b.passwordFile !== undefined ? (await readFile(b.passwordFile, 'utf8')).trim() : undefined;
  const bus = await NatsServiceBus.connect(
    {
      servers: b.servers,
      ...(b.tls ? { tls: b.caFile !== undefined ? { caFile: b.caFile } : {} } : {}),
      ...(b.user !== undefined && pass !== undefined ? { user: b.user, pass } : {}),
    },
    {
      service: config.service,
      streams: {
        defaults: { replicas: b.streamReplicas, maxAgeMs: b.streamMaxAgeSeconds * 1000 },
        // Production refuses audit and tree-head streams that cannot survive a node loss.
        ...(config.mode === 'production' ? { minAuditReplicas: 3 } : {}),
      },
    },
  );
  return { bus, close: () => bus.close() };
}
