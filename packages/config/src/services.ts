/** Every Sealpost service, by the name used in its SPIFFE id, NATS user and database. */
export const SERVICE_NAMES = ['contact-vault', 'consent', 'dispatch', 'audit', 'anomaly', 'identity'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The `<SERVICE>` token of per-service variables: `SEALPOST_VAULT_GRPC_ADDR`, `SEALPOST_CONSENT_GRPC_ADDR`... */
export const SERVICE_ENV_TOKEN = Object.freeze({
  'contact-vault': 'VAULT',
  consent: 'CONSENT',
  dispatch: 'DISPATCH',
  audit: 'AUDIT',
  anomaly: 'ANOMALY',
  identity: 'IDENTITY',
} as const) satisfies Readonly<Record<ServiceName, string>>;

/** Default gRPC port of each service; its health-only listener uses the port + 100. */
export const SERVICE_GRPC_PORT: Readonly<Record<ServiceName, number>> = Object.freeze({
  'contact-vault': 7401,
  consent: 7402,
  dispatch: 7403,
  audit: 7404,
  anomaly: 7405,
  identity: 7406,
});

export const HEALTH_PORT_OFFSET = 100;

export function isServiceName(value: string): value is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(value);
}

/** Database name used when `SEALPOST_MONGO_DATABASE` is unset: `sealpost_contact_vault`, `sealpost_consent`... */
export function defaultDatabaseOf(service: ServiceName): string {
  return `sealpost_${service.replace(/-/g, '_')}`;
}
