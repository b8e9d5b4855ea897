/** The services embedded mode runs, in start order. A service joins this list when it lands. */
import { startAuditService } from '@sealpost/audit';
import type { ServiceBus } from '@sealpost/bus';
import type { SealpostConfig, ServiceName } from '@sealpost/config';
import type { Logger } from '@sealpost/telemetry';
import type { ServiceEndpoint } from './endpoints';

export interface RunningService {
  readonly endpoint: ServiceEndpoint;
  /** Drains in-flight work within `drainMs`, then releases everything the service opened. */
  stop(drainMs: number): Promise<void>;
}

export interface EmbeddedServiceModule {
  readonly name: ServiceName;
  start(deps: { config: SealpostConfig; bus: ServiceBus; logger: Logger }): Promise<RunningService>;
}

export const EMBEDDED_SERVICES: readonly EmbeddedServiceModule[] = [{ name: 'audit', start: startAuditService }];
