/**
 * The standalone process of one service: configuration from the environment, a redacting logger, the bus per
 * configuration, then serve until SIGTERM/SIGINT and drain within SEALPOST_DRAIN_SECONDS. Start-up failures print
 * one JSON line with a code and the error's fixed text (never personal data) and exit 1.
 */
import { connectServiceBus, type ServiceBus } from '@sealpost/bus';
import { loadConfig, type SealpostConfig, type ServiceName } from '@sealpost/config';
import { createLogger, type Logger } from '@sealpost/telemetry';
import { errorCode } from '@sealpost/telemetry';

export interface RunningServiceHandle {
  stop(drainMs: number): Promise<void>;
}

export type StartService = (deps: {
  config: SealpostConfig;
  bus: ServiceBus;
  logger: Logger;
}) => Promise<RunningServiceHandle>;

export function runServiceProcess(service: ServiceName, start: StartService): void {
  const fail = (msg: string, err: unknown): never => {
    const code = errorCode(err);
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ level: 'fatal', service, msg, code, message })}\n`);
    process.exit(1);
  };
  const main = async (): Promise<void> => {
    const config = loadConfig(service);
    const logger = createLogger({ service, level: config.telemetry.logLevel });
    for (const warning of config.warnings) logger.warn({ warning }, 'configuration warning');
    const { bus, close } = await connectServiceBus(config);
    const running = await start({ config, bus, logger });
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      void running
        .stop(config.drainSeconds * 1000)
        .then(close)
        .then(
          () => process.exit(0),
          (err: unknown) => fail(`${service} stop failed`, err),
        );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  };
  main().catch((err: unknown) => fail(`${service} failed to start`, err));
}
