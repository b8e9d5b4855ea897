import { describeWithPeer, loadPeers } from '@sealpost/testkit';
import { runBusContract } from './bus-contract';
import { natsHarness } from './support/nats-harness';

// Plain NATS without auth (the dev server): every service identity is the same anonymous connection.
// For the TLS server with per-service users, call natsHarness with natsTlsConnectOptions(service) instead.
describeWithPeer('nats', 'bus contract: JetStream', () => {
  const url = loadPeers().nats?.url ?? 'nats://127.0.0.1:4222';
  runBusContract((_dir, durablePrefix) =>
    natsHarness({ connectionFor: () => ({ servers: url }), admin: { servers: url }, durablePrefix }),
  );
});
