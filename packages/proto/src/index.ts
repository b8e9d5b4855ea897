/** Generated protobuf messages and gRPC service definitions (ts-proto), grouped by proto package. */
export * as commonV1 from './gen/sealpost/common/v1/common';
export * as vaultV1 from './gen/sealpost/vault/v1/contact_vault';
export * as auditV1 from './gen/sealpost/audit/v1/audit_log';
export * as eventsV1 from './gen/sealpost/events/v1/vault_events';
export * as auditEventsV1 from './gen/sealpost/events/v1/audit_events';

import path from 'node:path';

/** Root of the .proto sources, for server reflection and proto-loader. */
export const PROTO_ROOT = path.resolve(__dirname, '../../../proto');
