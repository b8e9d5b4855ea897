import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  AwsKms,
  ContactCipher,
  CountingKms,
  InMemoryDataKeyStore,
  InMemoryTenantKeyStore,
  KeyHierarchy,
  KmsAccessDeniedError,
  KmsUnavailableError,
  computeBlindIndexes,
  kmsKeyIdResolver,
  normalizeContactFields,
} from '../src';
import { describeWithPeer, loadPeers } from '@sealpost/testkit';

const KMS_URL = loadPeers().kms?.endpoint ?? 'http://127.0.0.1:4599';
const region = loadPeers().kms?.region ?? 'eu-west-1';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** A TCP forwarder to local-kms that the test can cut, to make KMS unreachable for real. */
class Cuttable {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async open(): Promise<void> {
    const upstream = new URL(KMS_URL);
    this.server = createServer((client) => {
      const server = connect(Number(upstream.port), upstream.hostname);
      for (const socket of [client, server]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(server).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describeWithPeer('kms', 'AwsKms against local-kms', () => {
  const admin = new KMSClient({ region, endpoint: KMS_URL, credentials });
  const kms = new AwsKms({ region, endpoint: KMS_URL, credentials });
  const run = randomBytes(4).toString('hex');
  const tenantA = `tenant-a-${run}`;
  const tenantB = `tenant-b-${run}`;
  const keyIdFor = kmsKeyIdResolver({ template: 'alias/sealpost-{tenant}' });

  beforeAll(async () => {
    for (const tenant of [tenantA, tenantB]) {
      const key = await admin.send(new CreateKeyCommand({ Description: `sealpost test ${tenant}` }));
      await admin.send(new CreateAliasCommand({ AliasName: keyIdFor(tenant), TargetKeyId: key.KeyMetadata!.KeyId! }));
    }
  });
  afterAll(() => {
    kms.destroy();
    admin.destroy();
  });

  const context = () => ({ tenant: tenantA, purpose: 'kek', version: '1' });

  it('wraps and unwraps under the tenant key with an id-only context', async () => {
    const secret = randomBytes(32);
    const blob = await kms.encrypt(keyIdFor(tenantA), secret, context());
    expect(Buffer.from(blob).includes(secret)).toBe(false);
    expect(Buffer.from(await kms.decrypt(keyIdFor(tenantA), blob, context())).equals(secret)).toBe(true);
  });

  it('refuses a wrong encryption context or another tenant key with KMS_DECRYPT_REFUSED', async () => {
    const blob = await kms.encrypt(keyIdFor(tenantA), randomBytes(32), context());
    for (const wrong of [
      { ...context(), version: '2' },
      { ...context(), purpose: 'index' },
      { ...context(), tenant: tenantB },
      { tenant: tenantA, purpose: 'kek' },
    ]) {
      const attempt = kms.decrypt(keyIdFor(tenantA), blob, wrong);
      await expect(attempt).rejects.toBeInstanceOf(KmsAccessDeniedError);
      await expect(attempt).rejects.toMatchObject({ code: 'KMS_DECRYPT_REFUSED' });
    }
    await expect(kms.decrypt(keyIdFor(tenantB), blob, context())).rejects.toMatchObject({
      code: 'KMS_DECRYPT_REFUSED',
    });
  });

  it('reports a missing key as KMS_UNAVAILABLE (key-unusable), not as tampering', async () => {
    await expect(kms.encrypt(`alias/sealpost-missing-${run}`, randomBytes(32), context())).rejects.toMatchObject({
      code: 'KMS_UNAVAILABLE',
      reason: 'key-unusable',
    });
  });

  it('serves unwraps from cache while KMS is unreachable, until expiry, then fails with KMS_UNAVAILABLE', async () => {
    const link = new Cuttable();
    await link.open();
    const viaLink = new AwsKms({ region, endpoint: `http://127.0.0.1:${link.port}`, credentials, maxAttempts: 1 });
    const counting = new CountingKms(viaLink);
    let now = Date.now();
    const tenantKeys = new InMemoryTenantKeyStore();
    const dataKeys = new InMemoryDataKeyStore();
    const hierarchy = () =>
      new KeyHierarchy({
        kms: counting,
        kmsKeyIdFor: keyIdFor,
        tenantKeys,
        cache: { maxAgeMs: 60_000, maxUses: 1_000_000, now: () => now },
      });
    const keys = hierarchy();
    const cipher = new ContactCipher({ keys, dataKeys });
    const fields = { email: 'jane@example.com', phone: '+447911123456' };
    try {
      const record = await cipher.seal(tenantA, 'contact-1', fields);
      const indexes = computeBlindIndexes(await keys.currentIndexKeys(tenantA), normalizeContactFields(fields));
      // A second replica with a cold cache: its first use of each tenant key unwraps through the link.
      const replica = hierarchy();
      const replicaCipher = new ContactCipher({ keys: replica, dataKeys });
      const before = counting.calls;
      for (let i = 0; i < 1_000; i += 1) {
        await replicaCipher.open(tenantA, 'contact-1', record);
        computeBlindIndexes(await replica.currentIndexKeys(tenantA), normalizeContactFields(fields));
      }
      // 1,000 opens and 1,000 index computations: one KEK unwrap and one index-root unwrap.
      expect(counting.calls - before).toBe(2);

      await link.cut();
      now += 59_000;
      expect(await replicaCipher.open(tenantA, 'contact-1', record)).toEqual(fields);
      expect(computeBlindIndexes(await replica.currentIndexKeys(tenantA), normalizeContactFields(fields))).toEqual(
        indexes,
      );

      now += 1_000;
      const failed = replicaCipher.open(tenantA, 'contact-1', record);
      await expect(failed).rejects.toBeInstanceOf(KmsUnavailableError);
      // The first call may hit a pooled socket the cut reset (reported as a timeout by the SDK); the next
      // finds the port closed.
      await expect(failed).rejects.toMatchObject({
        code: 'KMS_UNAVAILABLE',
        reason: expect.stringMatching(/^(unreachable|timeout)$/),
      });
      await expect(replica.currentIndexKeys(tenantA)).rejects.toMatchObject({
        code: 'KMS_UNAVAILABLE',
        reason: 'unreachable',
      });

      await link.open(); // same port: KMS is back
      expect(await replicaCipher.open(tenantA, 'contact-1', record)).toEqual(fields);
    } finally {
      viaLink.destroy();
      await link.cut();
    }
  });
});
