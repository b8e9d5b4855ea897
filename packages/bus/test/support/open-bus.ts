/** Opens a bus handle from a JSON-able description: used by the harnesses and by child processes. */
import {
  EmbeddedBus,
  NatsServiceBus,
  type NatsConnectionSettings,
  type ServiceBus,
  type ServiceName,
  type StreamSettings,
} from '../../src/index';

export type ChildBusConfig =
  | {
      readonly kind: 'nats';
      readonly connections: Record<string, NatsConnectionSettings>;
      readonly streams: StreamSettings;
    }
  | { readonly kind: 'embedded'; readonly file: string; readonly streams: StreamSettings };

/** Returns the handle plus a closer that also closes an embedded bus opened for it. */
export async function openBus(
  config: ChildBusConfig,
  service: ServiceName,
): Promise<{ bus: ServiceBus; close: () => Promise<void> }> {
  if (config.kind === 'nats') {
    const connection = config.connections[service];
    if (connection === undefined) throw new Error(`no NATS connection settings for ${service}`);
    const bus = await NatsServiceBus.connect(connection, { service, streams: config.streams });
    return { bus, close: () => bus.close() };
  }
  const embedded = EmbeddedBus.open(config.file, { streams: config.streams, pollIntervalMs: 50 });
  return { bus: embedded.forService(service), close: () => embedded.close() };
}
