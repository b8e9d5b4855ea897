// The same contract against the NATS 2.12 TLS server with one NATS user per service (permissions from
// nats-permissions.ts): the server's own permission checks must agree with the adapter's.
import { describeWithPeer, natsTlsConnectOptions } from '@sealpost/testkit';
import { runBusContract } from './bus-contract';
import { natsHarness } from './support/nats-harness';

describeWithPeer('natsTls', 'bus contract: JetStream over TLS with per-service users', () => {
  runBusContract((_dir, durablePrefix) =>
    natsHarness({
      connectionFor: (s) => natsTlsConnectOptions(s),
      admin: natsTlsConnectOptions('admin'),
      durablePrefix,
    }),
  );
});
