/**
 * `pnpm start`: every Sealpost service that exists, in one process, in embedded mode — SQLite under
 * ./.sealpost (one file per service, one for the bus), the embedded durable bus, a local keyring and the dev
 * CA. Prints where each service listens and writes .sealpost/endpoints.json. Ctrl-C / SIGTERM drains and exits 0.
 */
import { createLogger } from '@sealpost/telemetry';
import { writeEndpointsFile, type ServiceEndpoint } from './endpoints';
import { prepareEmbeddedEnvironment } from './embedded-environment';
import { EMBEDDED_SERVICES, type RunningService } from './services';

const DRAIN_MS = 4000;

async function main(): Promise<void> {
  const logger = createLogger({ service: 'runner', level: 'info' });
  const environment = await prepareEmbeddedEnvironment(EMBEDDED_SERVICES.map((s) => s.name));
  const running: { name: string; service: RunningService }[] = [];
  let stopping = false;

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: draining ${running.length} service(s)…\n`);
    // Reverse start order: a service stops before what it depends on (the bus last).
    for (const { service } of running.reverse()) await service.stop(DRAIN_MS);
    await environment.close();
    process.stdout.write('stopped cleanly\n');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  const endpoints: Record<string, ServiceEndpoint> = {};
  for (const module of EMBEDDED_SERVICES) {
    const config = environment.configs.get(module.name)!;
    const service = await module.start({ config, bus: environment.bus.forService(module.name), logger });
    running.push({ name: module.name, service });
    endpoints[module.name] = service.endpoint;
  }
  const file = await writeEndpointsFile(environment.dataDir, environment.cliTls, endpoints);

  process.stdout.write(`Sealpost is running in embedded mode (data in ${environment.dataDir})\n`);
  for (const [name, endpoint] of Object.entries(endpoints)) {
    process.stdout.write(`  ${name.padEnd(14)} gRPC (mTLS) ${endpoint.grpc}   health ${endpoint.health}\n`);
  }
  process.stdout.write(`endpoints, CA and a client certificate for tools: ${file}\nCtrl-C stops.\n`);
}

main().catch((error: unknown) => {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`sealpost: could not start: ${typeof code === 'string' ? `${code}: ` : ''}${message}\n`);
  process.exit(1);
});
