/**
 * The one table of who may publish and consume where on the bus. NATS user permissions (production and
 * the test server) and the embedded bus's publish checks are both generated from it, so they cannot drift.
 */

/** Every Sealpost service, by the name used in its SPIFFE id, NATS user and database. */
export const SERVICES = ['contact-vault', 'consent', 'dispatch', 'audit', 'anomaly', 'identity'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Event domains: subject `sealpost.<domain>.<tenant>.<event>`, stream `SEALPOST_<DOMAIN>`. */
export const DOMAINS = ['vault', 'consent', 'dispatch', 'audit', 'anomaly', 'identity'] as const;
export type Domain = (typeof DOMAINS)[number];

export const SUBJECT_ROOT = 'sealpost';
export const DEAD_LETTER_STREAM = 'SEALPOST_DEADLETTER';
export const TREE_HEAD_STREAM = 'SEALPOST_TREEHEAD';

export interface ServiceBusGrant {
  /** The domain whose stream this service creates and publishes into. */
  readonly owns: Domain;
  /** Domains this service runs durable consumers on. */
  readonly consumes: readonly Domain[];
  /** Whether it may publish audit events (always under its own source token). */
  readonly audits: boolean;
}

export const BUS_GRANTS: Readonly<Record<ServiceName, ServiceBusGrant>> = Object.freeze({
  'contact-vault': { owns: 'vault', consumes: [], audits: true },
  consent: { owns: 'consent', consumes: ['dispatch'], audits: true },
  dispatch: { owns: 'dispatch', consumes: ['consent', 'anomaly', 'vault'], audits: true },
  audit: { owns: 'audit', consumes: ['audit'], audits: false },
  anomaly: { owns: 'anomaly', consumes: ['vault', 'consent', 'dispatch', 'identity'], audits: true },
  identity: { owns: 'identity', consumes: [], audits: true },
});

/** The token a service uses in audit subjects: `sealpost.audit.<source>.<tenant>.<action>`. */
export function auditSourceOf(service: ServiceName): Domain | 'vault' {
  return service === 'contact-vault' ? 'vault' : (service as Domain);
}

export function streamNameOf(domain: Domain): string {
  return `SEALPOST_${domain.toUpperCase()}`;
}

/** Subject for a domain event. Tenant and event are ids/codes: never personal data. */
export function eventSubject(domain: Domain, tenant: string, event: string): string {
  return `${SUBJECT_ROOT}.${domain}.${checkToken(tenant, 'tenant')}.${checkToken(event, 'event')}`;
}

export function auditSubject(service: ServiceName, tenant: string, action: string): string {
  return `${SUBJECT_ROOT}.audit.${auditSourceOf(service)}.${checkToken(tenant, 'tenant')}.${checkToken(action, 'action')}`;
}

/** The one tree-head event: `sealpost.treehead.<logId>.signed`. */
export const TREE_HEAD_EVENT = 'signed';

/**
 * Subject of a signed tree head (published by the audit service only). Tree heads belong to no tenant: the log id
 * takes the tenant position, and an envelope on this subject carries the log id as its `tenant`.
 */
export function treeHeadSubject(logId: string): string {
  return `${SUBJECT_ROOT}.treehead.${checkToken(logId, 'log id')}.${TREE_HEAD_EVENT}`;
}

export function deadLetterSubject(service: ServiceName, consumer: string): string {
  return `${SUBJECT_ROOT}.deadletter.${service}.${checkToken(consumer, 'consumer')}`;
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** Subject tokens are restricted so no caller can smuggle wildcards, dots or free text into a subject. */
export function checkToken(value: string, what: string): string {
  if (!TOKEN.test(value)) throw new RangeError(`invalid ${what} subject token`);
  return value;
}

/** Subject patterns (NATS wildcard syntax) a service may publish events on. */
export function publishPatterns(service: ServiceName): string[] {
  const grant = BUS_GRANTS[service];
  // The audit stream is shared by every source: each service, the audit service included, may publish only
  // under its own source token, which is what lets the audit log take the source from the subject.
  const ownAuditSubjects = `${SUBJECT_ROOT}.audit.${auditSourceOf(service)}.>`;
  const patterns = [
    grant.owns === 'audit' ? ownAuditSubjects : `${SUBJECT_ROOT}.${grant.owns}.>`,
    `${SUBJECT_ROOT}.deadletter.${service}.>`,
  ];
  if (grant.audits && grant.owns !== 'audit') patterns.push(ownAuditSubjects);
  if (service === 'audit') patterns.push(`${SUBJECT_ROOT}.treehead.>`);
  return patterns;
}

/** True when `subject` matches the NATS pattern (`*` one token, `>` one or more trailing tokens). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

export function mayPublish(service: ServiceName, subject: string): boolean {
  return publishPatterns(service).some((pattern) => subjectMatches(pattern, subject));
}

/** True when `service` may run durable consumers on `domain`'s stream (the dead-letter stream is separate). */
export function mayConsume(service: ServiceName, domain: Domain): boolean {
  return BUS_GRANTS[service].consumes.includes(domain);
}

/** Subjects a domain's stream captures: `sealpost.<domain>.>`. */
export function domainSubjects(domain: Domain): string {
  return `${SUBJECT_ROOT}.${domain}.>`;
}

/** Subjects of the dead-letter stream. */
export const DEAD_LETTER_SUBJECTS = `${SUBJECT_ROOT}.deadletter.>`;
/** Subjects of the signed tree-head stream (published by the audit service). */
export const TREE_HEAD_SUBJECTS = `${SUBJECT_ROOT}.treehead.>`;

export function isServiceName(value: string): value is ServiceName {
  return (SERVICES as readonly string[]).includes(value);
}
