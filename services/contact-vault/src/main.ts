/** Standalone contact-vault process: config from the environment, the bus per config, serve until SIGTERM/SIGINT. */
import { readFile } from 'node:fs/promises';
import { EmbeddedBus, NatsServiceBus, type ServiceBus } from '@sealpost/bus';
import { loadConfig, type SealpostConfig } from '@sealpost/config';
import { createLogger } from '@sealpost/telemetry';
import { startContactVaultService } from './service';

async function connectBus(config: SealpostConfig): Promise<{ bus: ServiceBus; close: () => Promise<void> }> {
  if (config.bus.kind === 'embedded') {
    const shared = EmbeddedBus.open(config.bus.file);
    const bus = shared.forService('contact-vault');
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
      service: 'contact-vault',
      streams: { defaults: { replicas: b.streamReplicas, maxAgeMs: b.streamMaxAgeSeconds * 1000 } },
    },
  );
  return { bus, close: () => bus.close() };
}

async function main(): Promise<void> {
  const config = loadConfig('contact-vault');
  const logger = createLogger({ service: 'contact-vault', level: config.telemetry.logLevel });
  for (const warning of config.warnings) logger.warn({ warning }, 'configuration warning');
  const { bus, close } = await connectBus(config);
  const service = await startContactVaultService({ config, bus, logger });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void service
      .stop(config.drainSeconds * 1000)
      .then(close)
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ code: err instanceof Error ? err.name : 'error' }, 'contact vault stop failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  // Start-up errors carry codes and fixed texts (config, storage, KMS); never personal data.
  const code = err instanceof Error ? String((err as { code?: unknown }).code ?? err.name) : 'error';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'contact vault failed to start', code, message })}\n`);
  process.exit(1);
});
