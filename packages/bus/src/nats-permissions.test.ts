import {
  NATS_ADMIN_USER,
  NatsConfigError,
  renderNatsPermissions,
  renderNatsServerConfig,
  type NatsServerConfigInput,
} from './nats-permissions';
import {
  BUS_GRANTS,
  SERVICES,
  auditSubject,
  deadLetterSubject,
  eventSubject,
  streamNameOf,
  subjectMatches,
} from './topology';
import type { ServiceName } from './topology';
import { inboxPrefixFor, toNatsConnectOptions } from './nats/connection-options';
import { InvalidBusOptionsError } from './errors';

const allowsPublish = (service: ServiceName, subject: string): boolean => {
  const p = renderNatsPermissions(service).publish;
  return p.allow.some((a) => subjectMatches(a, subject)) && !p.deny.some((d) => subjectMatches(d, subject));
};
const allowsSubscribe = (service: ServiceName, subject: string): boolean =>
  renderNatsPermissions(service).subscribe.allow.some((a) => subjectMatches(a, subject));

describe('renderNatsPermissions', () => {
  it.each(SERVICES)('%s publishes events only in its own domain', (service) => {
    const own = BUS_GRANTS[service].owns;
    for (const grant of Object.values(BUS_GRANTS)) {
      const subject = eventSubject(grant.owns, 't1', 'created');
      // Audit subjects carry the source service as the second token; checked separately below.
      if (grant.owns === 'audit') continue;
      expect(allowsPublish(service, subject)).toBe(grant.owns === own);
    }
  });

  it('makes the audit source unforgeable: a service may only publish audit events under its own token', () => {
    // Every service, the audit service included, publishes audit events only under its own source token.
    for (const service of SERVICES) {
      for (const other of SERVICES) {
        if (other === 'audit' || !BUS_GRANTS[other].audits) continue;
        const subject = auditSubject(other, 't1', 'reveal');
        expect(allowsPublish(service, subject)).toBe(service === other);
      }
    }
    expect(allowsPublish('audit', 'sealpost.audit.audit.t1.query')).toBe(true);
    // contact-vault audits as `vault`, so it must not be able to use the `contact-vault` token either.
    expect(allowsPublish('consent', 'sealpost.audit.vault.t1.reveal')).toBe(false);
    expect(allowsPublish('contact-vault', 'sealpost.audit.vault.t1.reveal')).toBe(true);
  });

  it('lets each service dead-letter only under its own name', () => {
    for (const service of SERVICES) {
      for (const other of SERVICES) {
        expect(allowsPublish(service, deadLetterSubject(other, 'c1'))).toBe(service === other);
      }
    }
  });

  it('gives only audit the tree-head subjects and stream', () => {
    for (const service of SERVICES) {
      expect(allowsPublish(service, 'sealpost.treehead.t1.signed')).toBe(service === 'audit');
      expect(allowsPublish(service, '$JS.API.STREAM.CREATE.SEALPOST_TREEHEAD')).toBe(service === 'audit');
    }
  });

  it.each(SERVICES)('%s manages its own stream and the dead-letter stream, and no other', (service) => {
    const own = streamNameOf(BUS_GRANTS[service].owns);
    for (const grant of Object.values(BUS_GRANTS)) {
      const stream = streamNameOf(grant.owns);
      for (const op of ['CREATE', 'UPDATE']) {
        expect(allowsPublish(service, `$JS.API.STREAM.${op}.${stream}`)).toBe(stream === own);
      }
    }
    for (const op of ['CREATE', 'UPDATE', 'INFO']) {
      expect(allowsPublish(service, `$JS.API.STREAM.${op}.SEALPOST_DEADLETTER`)).toBe(true);
    }
    expect(allowsPublish(service, '$JS.API.INFO')).toBe(true);
  });

  it.each(SERVICES)('%s may never delete or purge a stream, or delete a message', (service) => {
    const streams = [...Object.values(BUS_GRANTS).map((g) => streamNameOf(g.owns)), 'SEALPOST_DEADLETTER', 'X'];
    for (const stream of streams) {
      expect(allowsPublish(service, `$JS.API.STREAM.DELETE.${stream}`)).toBe(false);
      expect(allowsPublish(service, `$JS.API.STREAM.PURGE.${stream}`)).toBe(false);
      expect(allowsPublish(service, `$JS.API.STREAM.MSG.DELETE.${stream}`)).toBe(false);
    }
    expect(allowsPublish(service, '$JS.API.STREAM.LIST')).toBe(false);
    expect(allowsPublish(service, '$JS.API.ACCOUNT.PURGE.x')).toBe(false);
  });

  it.each(SERVICES)('%s consumes exactly the streams BUS_GRANTS lists', (service) => {
    const consumed = new Set(BUS_GRANTS[service].consumes.map(streamNameOf));
    for (const grant of Object.values(BUS_GRANTS)) {
      const stream = streamNameOf(grant.owns);
      const expected = consumed.has(stream);
      const subjects = [
        `$JS.API.CONSUMER.CREATE.${stream}`,
        `$JS.API.CONSUMER.CREATE.${stream}.durable1`,
        `$JS.API.CONSUMER.CREATE.${stream}.durable1.sealpost.${grant.owns}.>`,
        `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.durable1`,
        `$JS.API.CONSUMER.INFO.${stream}.durable1`,
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.durable1`,
        `$JS.API.CONSUMER.DELETE.${stream}.durable1`,
        `$JS.ACK.${stream}.durable1.1.2.3.1700000000.0`,
      ];
      for (const subject of subjects) expect([subject, allowsPublish(service, subject)]).toEqual([subject, expected]);
      // Stream info on a consumed stream is allowed; create/update only on the own stream (checked above).
      if (expected) expect(allowsPublish(service, `$JS.API.STREAM.INFO.${stream}`)).toBe(true);
    }
  });

  it('never lets a service subscribe to event subjects directly (that would bypass consumer grants)', () => {
    for (const service of SERVICES) {
      expect(allowsSubscribe(service, `_INBOX_${service}.abc.def`)).toBe(true);
      expect(allowsSubscribe(service, 'sealpost.vault.t1.created')).toBe(false);
      expect(allowsSubscribe(service, 'sealpost.audit.vault.t1.reveal')).toBe(false);
      expect(allowsSubscribe(service, '$JS.API.STREAM.INFO.SEALPOST_VAULT')).toBe(false);
      expect(renderNatsPermissions(service).subscribe.allow).toEqual([`_INBOX_${service}.>`]);
    }
  });

  it("never lets a service subscribe to another service's replies (per-service inbox prefix)", () => {
    for (const service of SERVICES) {
      // The shared default inbox is closed to every service user.
      expect(allowsSubscribe(service, '_INBOX.abc.def')).toBe(false);
      expect(allowsSubscribe(service, '_INBOX.>')).toBe(false);
      for (const other of SERVICES) {
        expect(allowsSubscribe(service, `_INBOX_${other}.abc.1`)).toBe(service === other);
      }
    }
    // The prefix the bus connects with is the one the permission grants.
    expect(toNatsConnectOptions({ servers: 'nats://h:4222' }, 'n', 'dispatch').inboxPrefix).toBe('_INBOX_dispatch');
    expect(toNatsConnectOptions({ servers: 'nats://h:4222' }, 'n').inboxPrefix).toBeUndefined();
    expect(() => inboxPrefixFor('a.b')).toThrow(InvalidBusOptionsError);
    expect(() => inboxPrefixFor('*')).toThrow(InvalidBusOptionsError);
  });

  it('refuses an unknown service', () => {
    expect(() => renderNatsPermissions('mallory' as ServiceName)).toThrow(NatsConfigError);
    expect(() => renderNatsPermissions('toString' as ServiceName)).toThrow(NatsConfigError);
  });
});

describe('renderNatsServerConfig', () => {
  const base: NatsServerConfigInput = {
    port: 4223,
    tls: { cert: '/p/certs/server.pem', key: '/p/certs/server-key.pem', ca: '/p/certs/ca.pem' },
    users: SERVICES.map((service) => ({ service, password: `pw-${service.replace('-', '')}-0123456789` })),
    storeDir: '/p/nats-tls/js',
    adminPassword: 'admin-password-0123456789',
  };

  it('renders a TLS listener, JetStream store, one user per service and an unrestricted admin', () => {
    const text = renderNatsServerConfig({ ...base, httpPort: 8223 });
    expect(text).toContain('listen: "127.0.0.1:4223"');
    expect(text).toContain('http: "127.0.0.1:8223"');
    expect(text).toContain('store_dir: "/p/nats-tls/js"');
    expect(text).toContain('cert_file: "/p/certs/server.pem"');
    expect(text).toContain('ca_file: "/p/certs/ca.pem"');
    for (const service of SERVICES) expect(text).toContain(`user: "${service}"`);
    expect(text).toContain(`{ user: "${NATS_ADMIN_USER}", password: "admin-password-0123456789" }`);
    // JetStream API subjects are quoted so `$JS` is not read as a config variable.
    expect(text).toContain('"$JS.API.STREAM.CREATE.SEALPOST_VAULT"');
    expect(text).not.toMatch(/[^"]\$JS/);
    expect(text.match(/permissions:/g)).toHaveLength(SERVICES.length);
  });

  it('puts each service permission list under its own user', () => {
    const text = renderNatsServerConfig({ ...base, users: [{ service: 'identity', password: 'p'.repeat(16) }] });
    expect(text).toContain('"sealpost.identity.>"');
    expect(text).not.toContain('"sealpost.vault.>"');
    expect(text).not.toContain('user: "contact-vault"');
  });

  it.each<[string, Partial<NatsServerConfigInput>]>([
    ['short password', { adminPassword: 'short' }],
    ['bcrypt-looking password', { adminPassword: '$2a$11$abcdefghijklmnopqrstuv' }],
    ['quote in password', { users: [{ service: 'audit', password: 'abcdefghijklmnop"' }] }],
    ['duplicate user', { users: [base.users[0]!, base.users[0]!] }],
    ['unknown service', { users: [{ service: 'admin' as ServiceName, password: 'p'.repeat(16) }] }],
    ['relative path', { storeDir: 'nats/js' }],
    ['variable in path', { storeDir: '/p/$HOME/js' }],
    ['newline in path', { tls: { ...base.tls, ca: '/p/ca.pem"\n}\nlisten: "0.0.0.0:1"' } }],
    ['bad port', { port: 70000 }],
    ['bad host', { host: '0.0.0.0" }' }],
  ])('refuses %s', (_what, override) => {
    expect(() => renderNatsServerConfig({ ...base, ...override })).toThrow(NatsConfigError);
    try {
      renderNatsServerConfig({ ...base, ...override });
    } catch (error) {
      expect((error as NatsConfigError).code).toBe('NATS_CONFIG_INVALID');
      // Secrets never end up in the error message.
      expect((error as Error).message).not.toMatch(/abcdefghijklmnop|short/);
    }
  });
});
