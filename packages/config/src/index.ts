/** `@sealpost/config`: the only code that reads `process.env`. */
export { ConfigError } from './errors';
export { renderConfigTable } from './config-table';
export { deepFreeze } from './deep-freeze';
export type { Env } from './env-reader';
export {
  loadConfig,
  TEST_HARNESS_PREFIXES,
  type AuditConfig,
  type AuthConfig,
  type BusConfig,
  type GrpcConfig,
  type JwksSource,
  type KmsConfig,
  type Mode,
  type ProvidersConfig,
  type QuotaConfig,
  type VaultConfig,
  type SealpostConfig,
  type StoreConfig,
  type TlsConfig,
} from './load-config';
export { loadTelemetrySettings, type TelemetrySettings } from './telemetry-settings';
export {
  HEALTH_PORT_OFFSET,
  SERVICE_ENV_TOKEN,
  SERVICE_GRPC_PORT,
  SERVICE_NAMES,
  defaultDatabaseOf,
  isServiceName,
  type ServiceName,
} from './services';
export {
  DEFAULT_DATA_DIR,
  DEFAULT_PURPOSE_CODES,
  DEFAULT_TICKET_PATTERN,
  DEV_JWT_ISSUER,
  DEV_TRUST_DOMAIN,
  LOG_LEVELS,
  SETTINGS,
  grpcAddrSetting,
  healthAddrSetting,
  isSettingName,
  type LogLevel,
  type SettingGroup,
  type SettingName,
  type SettingSpec,
} from './settings';
