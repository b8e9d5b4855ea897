/** What the bus contract suite needs from an adapter under test; one implementation per adapter. */
import type { ServiceBus, ServiceName, StreamSettings } from '../../src/index';
import type { ChildBusConfig } from './open-bus';

export interface StoredCopy {
  readonly subject: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: Uint8Array;
}

export interface BusHarness {
  readonly system: 'nats' | 'embedded';
  /** A fresh handle with the service's own identity. */
  open(service: ServiceName): Promise<ServiceBus>;
  /** How a child process opens the same bus. */
  childConfig(): ChildBusConfig;
  /** Stores a message bypassing the publisher's checks (e.g. one without envelope headers). */
  injectRaw(subject: string, payload: Uint8Array, headers: Record<string, string>, msgId: string): Promise<void>;
  /** Messages stored in the dead-letter stream on `subject`. */
  deadLetters(subject: string): Promise<StoredCopy[]>;
  close(): Promise<void>;
}

/** Stream settings for tests: short retention, so the fixed-name streams on a shared server stay small. */
export const TEST_STREAMS: StreamSettings = {
  defaults: { maxAgeMs: 10 * 60_000, maxBytes: 256 * 1024 * 1024 },
};
