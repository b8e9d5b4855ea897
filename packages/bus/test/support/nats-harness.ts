/** The JetStream adapter under test. Connection settings are injected so a TLS server with per-service users is a one-line addition. */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, nanos } from '@nats-io/transport-node';
import {
  DEAD_LETTER_STREAM,
  NatsServiceBus,
  SERVICES,
  toNatsConnectOptions,
  type NatsConnectionSettings,
  type ServiceBus,
  type ServiceName,
} from '../../src/index';
import { TEST_STREAMS, type BusHarness, type StoredCopy } from './harness';

export interface NatsHarnessSettings {
  /** Settings per service identity. */
  readonly connectionFor: (service: ServiceName) => NatsConnectionSettings;
  /** An identity allowed to publish anywhere and manage consumers (raw injection, dead-letter reads, cleanup). */
  readonly admin: NatsConnectionSettings;
  /** Durable names of this run start with it; they are deleted at the end. */
  readonly durablePrefix: string;
}

export async function natsHarness(settings: NatsHarnessSettings): Promise<BusHarness> {
  const admin = await connect(toNatsConnectOptions(settings.admin, 'sealpost-test-admin'));
  const jsm = await jetstreamManager(admin);
  const js = jetstream(admin);
  const opened: ServiceBus[] = [];
  const connections = Object.fromEntries(SERVICES.map((s) => [s, settings.connectionFor(s)]));
  return {
    system: 'nats',
    async open(service) {
      const bus = await NatsServiceBus.connect(settings.connectionFor(service), { service, streams: TEST_STREAMS });
      opened.push(bus);
      return bus;
    },
    childConfig: () => ({ kind: 'nats', connections, streams: TEST_STREAMS }),
    async injectRaw(subject, payload, headers, msgId) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(headers)) h.set(k, v);
      await js.publish(subject, payload, { msgID: msgId, headers: h });
    },
    async deadLetters(subject): Promise<StoredCopy[]> {
      const info = await jsm.consumers.add(DEAD_LETTER_STREAM, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
        filter_subject: subject,
        inactive_threshold: nanos(30_000),
      });
      try {
        if (info.num_pending === 0) return [];
        const consumer = await js.consumers.get(DEAD_LETTER_STREAM, info.name);
        const out: StoredCopy[] = [];
        for await (const m of await consumer.fetch({ max_messages: info.num_pending, expires: 2000 })) {
          const h: Record<string, string> = {};
          for (const k of m.headers?.keys() ?? []) h[k] = m.headers?.get(k) ?? '';
          out.push({ subject: m.subject, headers: h, payload: m.data });
        }
        return out;
      } finally {
        await jsm.consumers.delete(DEAD_LETTER_STREAM, info.name).catch(() => undefined);
      }
    },
    async close() {
      try {
        await Promise.all(opened.map((bus) => bus.close()));
        for await (const ci of jsm.consumers.list('SEALPOST_VAULT')) {
          if (ci.name.startsWith(settings.durablePrefix)) await jsm.consumers.delete('SEALPOST_VAULT', ci.name);
        }
      } finally {
        await admin.drain();
      }
    },
  };
}
