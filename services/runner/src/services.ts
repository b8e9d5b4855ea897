/**
 * The services embedded mode runs, in start order: audit first, because it creates the audit stream that the
 * others' fail-closed audit events need, and serves the signed tree heads and inclusion proofs the vault's erasure
 * receipts cite (the vault dials it at SEALPOST_AUDIT_GRPC_ADDR with its own certificate). A service joins this list
 * when it lands.
 */
import { startAuditService } from '@sealpost/audit';
import { startContactVaultService } from '@sealpost/contact-vault';
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

export const EMBEDDED_SERVICES: readonly EmbeddedServiceModule[] = [
  { name: 'audit', start: startAuditService },
  { name: 'contact-vault', start: startContactVaultService },
];
