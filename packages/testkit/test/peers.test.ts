// The peers that scripts/peers.sh starts really answer, and the TLS NATS server enforces the generated
// per-service permissions (packages/bus/src/nats-permissions.ts) end to end.
import { execFileSync } from 'node:child_process';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MongoClient } from 'mongodb';
import { describeWithPeer, natsTlsConnectOptions, requirePeer, uniqueName } from '../src/index';

describeWithPeer('nats', 'machine NATS (plain, JetStream)', () => {
  it('answers with JetStream enabled', async () => {
    const nc = await connect({ servers: requirePeer('nats').url });
    try {
      expect(nc.info?.version).toMatch(/^2\./);
      const info = await (await jetstreamManager(nc)).getAccountInfo();
      expect(info.limits).toBeDefined();
    } finally {
      await nc.close();
    }
  });
});

/** Resolves true once the server reports a permission violation on `subject`, false after `ms`. */
async function violation(nc: NatsConnection, subject: string, ms = 3000): Promise<boolean> {
  let timeout: NodeJS.Timeout | undefined;
  const timer = new Promise<false>((resolve) => (timeout = setTimeout(() => resolve(false), ms)));
  const seen = (async () => {
    for await (const status of nc.status()) {
      if (
        status.type === 'error' &&
        String(status.error).includes(`Permissions Violation`) &&
        String(status.error).includes(subject)
      )
        return true;
    }
    return false;
  })();
  try {
    return await Promise.race([seen, timer]);
  } finally {
    clearTimeout(timeout);
  }
}

describeWithPeer('natsTls', 'TLS NATS with one user per service', () => {
  const tenant = uniqueName('t');
  const connections: NatsConnection[] = [];
  const as = async (user: string): Promise<NatsConnection> => {
    // Service users may subscribe only under their own inbox prefix (as @sealpost/bus connects).
    const inbox = user === 'admin' ? {} : { inboxPrefix: `_INBOX_${user}` };
    const nc = await connect({ ...natsTlsConnectOptions(user), ...inbox, name: `testkit-${user}` });
    connections.push(nc);
    return nc;
  };
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
  });

  it('is a current nats-server (2.11/2.12) with JetStream, reached over TLS', async () => {
    const nc = await as('admin');
    expect(nc.info?.version).toMatch(/^2\.1[12]\./);
    expect(nc.info?.tls_required).toBe(true);
    expect((await (await jetstreamManager(nc)).getAccountInfo()).limits).toBeDefined();
  });

  it('refuses a wrong password', async () => {
    const options = natsTlsConnectOptions('consent');
    await expect(connect({ ...options, pass: `${options.pass}x`, reconnect: false })).rejects.toThrow(/Authorization/i);
  });

  it('refuses to let a service publish into another service domain', async () => {
    const nc = await as('consent');
    const denied = violation(nc, `sealpost.vault.${tenant}.created`);
    nc.publish(`sealpost.vault.${tenant}.created`);
    await nc.flush();
    expect(await denied).toBe(true);
  });

  it('refuses a direct subscription to event subjects', async () => {
    const nc = await as('anomaly');
    const denied = violation(nc, 'sealpost.consent.>');
    nc.subscribe('sealpost.consent.>');
    await nc.flush();
    expect(await denied).toBe(true);
  });

  it("refuses a subscription to the shared inbox or to another service's inbox", async () => {
    const nc = await as('anomaly');
    for (const subject of ['_INBOX.>', '_INBOX_consent.>']) {
      const denied = violation(nc, subject);
      nc.subscribe(subject);
      await nc.flush();
      expect([subject, await denied]).toEqual([subject, true]);
    }
  });

  it('refuses stream management outside the own stream', async () => {
    const nc = await as('consent');
    const jsm = await jetstreamManager(nc, { timeout: 2000 });
    const denied = /Permissions Violation/i;
    await expect(jsm.streams.add({ name: 'SEALPOST_VAULT', subjects: ['sealpost.vault.>'] })).rejects.toThrow(denied);
    await expect(jsm.streams.purge('SEALPOST_CONSENT')).rejects.toThrow(denied);
    await expect(jsm.streams.delete('SEALPOST_CONSENT')).rejects.toThrow(denied);
  });

  describe('a published event flows to a granted consumer only', () => {
    const durable = uniqueName('testkit');
    let consentJsm: JetStreamManager;

    beforeAll(async () => {
      consentJsm = await jetstreamManager(await as('consent'), { timeout: 5000 });
      // The stream may already exist (created by the bus tests); only create it when absent.
      await consentJsm.streams.info('SEALPOST_CONSENT').catch(() =>
        consentJsm.streams.add({
          name: 'SEALPOST_CONSENT',
          subjects: ['sealpost.consent.>'],
          duplicate_window: 120e9,
        }),
      );
    });

    it('lets consent publish, dispatch consume and ack, and identity not even create a consumer', async () => {
      const subject = `sealpost.consent.${tenant}.confirmed`;
      const ack = await jetstream(connections.at(-1)!).publish(subject, 'payload', { msgID: uniqueName('ev') });
      expect(ack.stream).toBe('SEALPOST_CONSENT');

      const dispatchNc = await as('dispatch');
      const jsm = await jetstreamManager(dispatchNc, { timeout: 5000 });
      await jsm.consumers.add('SEALPOST_CONSENT', {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        filter_subject: `sealpost.consent.${tenant}.>`,
        inactive_threshold: 60e9,
      });
      try {
        const consumer = await jetstream(dispatchNc).consumers.get('SEALPOST_CONSENT', durable);
        const msg = await consumer.next({ expires: 5000 });
        expect(msg?.subject).toBe(subject);
        // ackAck waits for the server's confirmation, so a refused `$JS.ACK…` publish would fail here.
        expect(await msg!.ackAck({ timeout: 5000 })).toBe(true);
        expect((await consumer.info()).num_ack_pending).toBe(0);
      } finally {
        await jsm.consumers.delete('SEALPOST_CONSENT', durable);
      }

      const identityJsm = await jetstreamManager(await as('identity'), { timeout: 2000 });
      await expect(
        identityJsm.consumers.add('SEALPOST_CONSENT', { durable_name: `${durable}x`, ack_policy: AckPolicy.Explicit }),
      ).rejects.toThrow(/Permissions Violation/i);
    });
  });
});

describeWithPeer('mongo', 'FerretDB (MongoDB wire protocol)', () => {
  it('answers a driver ping and stores and reads a document', async () => {
    const client = new MongoClient(requirePeer('mongo').url, { serverSelectionTimeoutMS: 5000 });
    const dbName = uniqueName('testkit');
    try {
      const db = client.db(dbName);
      expect((await db.command({ ping: 1 })).ok).toBe(1);
      await db.collection('things').insertOne({ _id: 'a' as never, n: 1 });
      expect(await db.collection('things').findOne({ _id: 'a' as never })).toEqual({ _id: 'a', n: 1 });
    } finally {
      await client.db(dbName).dropDatabase();
      await client.close();
    }
  });
});

describeWithPeer('kms', 'local KMS', () => {
  it('creates a key in the configured region', async () => {
    const kms = requirePeer('kms');
    const response = await fetch(kms.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.CreateKey' },
      body: JSON.stringify({ Description: 'testkit' }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { KeyMetadata: { Arn: string; KeyState: string } };
    expect(body.KeyMetadata.Arn).toContain(`:${kms.region}:`);
    expect(body.KeyMetadata.KeyState).toBe('Enabled');
  });
});

describeWithPeer('ses', 'SES v2 emulator', () => {
  it('accepts a send and shows it in the store', async () => {
    const { endpoint } = requirePeer('ses');
    const subject = uniqueName('subject');
    const sent = await fetch(`${endpoint}/v2/email/outbound-emails`, {
      method: 'POST',
      // The emulator wants some AWS authorization header and does not verify it (the SDK signs for real).
      headers: { 'Content-Type': 'application/json', Authorization: 'AWS4-HMAC-SHA256 Credential=test/x' },
      body: JSON.stringify({
        FromEmailAddress: 'sender@example.com',
        Destination: { ToAddresses: ['recipient@example.com'] },
        Content: { Simple: { Subject: { Data: subject }, Body: { Text: { Data: 'synthetic test body' } } } },
      }),
    });
    expect(sent.status).toBe(200);
    const store = (await (await fetch(`${endpoint}/store`)).json()) as { emails: { subject: string }[] };
    expect(store.emails.some((email) => email.subject === subject)).toBe(true);
  });
});

describeWithPeer('natsCli', 'nats CLI', () => {
  it('is the pinned version', () => {
    expect(execFileSync(requirePeer('natsCli'), ['--version'], { encoding: 'utf8' })).toContain('0.5.0');
  });
});
