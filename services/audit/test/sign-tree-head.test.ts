import fs from 'node:fs';
import path from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { describeWithPeer, loadPeers, tempDir } from '@sealpost/testkit';
import { merkleRoot, verifyTreeHeadJws } from '@sealpost/audit-format';
import { emptyFrontier } from '../src/domain';
import { KmsEs256Signer } from '../src/adapters/signing/kms-es256-signer';
import { LocalEd25519Signer } from '../src/adapters/signing/local-ed25519-signer';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { FileWitness } from '../src/adapters/witness/file-witness';
import { TreeHeadSchedule, signTreeHead } from '../src/app/sign-tree-head';
import type { StoredTreeHead } from '../src/ports/audit-log-store';
import type { TreeHeadSigner } from '../src/ports/tree-head-signer';
import { buildBatch, sampleEntry } from './fixtures';

function flipChar(s: string, at: number): string {
  const c = s[at] === 'A' ? 'B' : 'A';
  return s.slice(0, at) + c + s.slice(at + 1);
}

async function signedHeadChecks(signer: TreeHeadSigner, dir: string): Promise<void> {
  const store = SqliteAuditLogStore.open(path.join(dir, 'audit.sqlite'));
  const witness = new FileWitness(path.join(dir, 'witness', 'sth.jsonl'));
  const published: StoredTreeHead[] = [];
  try {
    const built = buildBatch(emptyFrontier(), [sampleEntry(), sampleEntry(), sampleEntry()], 1);
    await store.append(built.batch);
    const sth = await signTreeHead({
      store,
      signer,
      witness,
      logId: 'sealpost-audit-test',
      publish: async (h) => void published.push(h),
      now: () => 1_700_000_123_456,
    });
    expect(sth).toMatchObject({ treeSize: 3, timestamp: 1_700_000_123_456, kid: signer.kid });
    expect(sth.rootHash).toBe(merkleRoot(built.batch.leaves.map((l) => l.leafHash)).toString('hex'));
    expect(await store.latestTreeHead()).toEqual(sth);
    expect(await witness.latest()).toEqual(sth);
    expect(published).toEqual([sth]);
    const jwk = await signer.publicJwk();
    await expect(verifyTreeHeadJws(sth, [jwk])).resolves.toMatchObject({ treeSize: 3 });
    // A signature over other fields, a flipped signature byte, or an unknown kid are all refused.
    await expect(verifyTreeHeadJws({ ...sth, treeSize: 4 }, [jwk])).rejects.toMatchObject({
      code: 'STH_PAYLOAD_MISMATCH',
    });
    const sigAt = sth.jws.lastIndexOf('.') + 5;
    await expect(verifyTreeHeadJws({ ...sth, jws: flipChar(sth.jws, sigAt) }, [jwk])).rejects.toMatchObject({
      code: 'STH_BAD_SIGNATURE',
    });
    await expect(verifyTreeHeadJws({ ...sth, kid: 'other' }, [jwk])).rejects.toMatchObject({
      code: 'STH_UNKNOWN_KID',
    });
  } finally {
    await store.close();
  }
}

describe('tree-head signing with the local Ed25519 key', () => {
  it('creates a 0600 key file once, keeps its kid, and signs verifiable, stored, witnessed heads', async () => {
    const dir = tempDir('audit-sth');
    const keyFile = path.join(dir.path, 'keys', 'tree-head.pem');
    const signer = await LocalEd25519Signer.fromFile(keyFile);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect((await LocalEd25519Signer.fromFile(keyFile)).kid).toBe(signer.kid);
    await signedHeadChecks(signer, dir.path);
    fs.chmodSync(keyFile, 0o644);
    await expect(LocalEd25519Signer.fromFile(keyFile)).rejects.toThrow(/mode 0600/);
  });

  it('signs every N entries and on a timer even when idle', async () => {
    const dir = tempDir('audit-sth-schedule');
    const store = SqliteAuditLogStore.open(path.join(dir.path, 'audit.sqlite'));
    const signer = await LocalEd25519Signer.fromFile(path.join(dir.path, 'k.pem'));
    const schedule = new TreeHeadSchedule({
      store,
      signer,
      witness: new FileWitness(path.join(dir.path, 'w.jsonl')),
      logId: 'log-s',
      everyEntries: 2,
      everyMs: 150,
    });
    try {
      schedule.start();
      await new Promise((r) => setTimeout(r, 400));
      const idle = await store.listTreeHeads();
      expect(idle.length).toBeGreaterThanOrEqual(2);
      expect(idle.every((h) => h.treeSize === 0)).toBe(true);
      await store.append(buildBatch(emptyFrontier(), [sampleEntry(), sampleEntry()], 1).batch);
      schedule.noteAppended(1);
      schedule.noteAppended(1);
      await schedule.signNow();
      expect((await store.latestTreeHead())?.treeSize).toBe(2);
    } finally {
      await schedule.stop();
      await store.close();
    }
  });
});

describeWithPeer('kms', 'tree-head signing with AWS KMS ES256 (local-kms)', () => {
  it('signs heads with a KMS-held P-256 key that verify with its public JWK', async () => {
    const kms = loadPeers().kms!;
    const client = new KMSClient({
      endpoint: kms.endpoint,
      region: kms.region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const key = await client.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const signer = new KmsEs256Signer(client, key.KeyMetadata!.KeyId!);
    expect((await signer.publicJwk()).crv).toBe('P-256');
    await signedHeadChecks(signer, tempDir('audit-kms').path);
    client.destroy();
  });
});
