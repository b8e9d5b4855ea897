/**
 * The scheduled retention sweep over both stores (SQLite and MongoDB/FerretDB), two replicas sharing the stores:
 * only the holder of the retention lease sweeps, the sweep erases through the audited erasure path (the REAL audit
 * service signs the entries the erasures wait for) and reports counts, and the standby takes over when the holder
 * stops.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDevTokenIssuer } from '@sealpost/access';
import { EmbeddedBus, type ServiceBus } from '@sealpost/bus';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { BusAuditPublisher } from '../src/adapters/bus/bus-audit-publisher';
import type { GrpcAuditProofs } from '../src/adapters/grpc/grpc-audit-proofs';
import { openLocalReceiptSigner } from '../src/adapters/signing/local-receipt-signer';
import type { EraseDeps } from '../src/app/erase-contact';
import { RetentionSchedule } from '../src/app/retention-schedule';
import type { RetentionReport } from '../src/app/sweep-retention';
import { upsertContact } from '../src/app/upsert-contact';
import { startAuditPeer, type AuditPeer } from './support/audit-peer';
import { mongoVault, sqliteVault, type VaultCtx } from './support/vault-stores';

const T1 = 't-ret-a';
const T2 = 't-ret-b';
const LONG_AGO = new Date('2023-03-01T00:00:00Z');

let peerDir: string;
let shared: EmbeddedBus;
let vaultBus: ServiceBus;
let auditPeer: AuditPeer;
let auditProofs: GrpcAuditProofs;

beforeAll(async () => {
  peerDir = mkdtempSync(path.join(tmpdir(), 'sealpost-vault-ret-audit-'));
  await openDevTokenIssuer({ dir: path.join(peerDir, 'identity'), mode: 'test' });
  shared = EmbeddedBus.open(path.join(peerDir, 'bus.sqlite'), { pollIntervalMs: 20 });
  auditPeer = await startAuditPeer({
    dir: peerDir,
    pki: path.join(peerDir, 'pki'),
    shared,
    jwksFile: path.join(peerDir, 'identity', 'jwks.json'),
    sthEverySeconds: 1,
  });
  auditProofs = await auditPeer.proofsForVault(30_000);
  vaultBus = shared.forService('contact-vault');
  await vaultBus.ensureStreams();
}, 60_000);

afterAll(async () => {
  auditProofs?.close();
  await vaultBus?.close();
  await auditPeer?.stop();
  await shared?.close();
  rmSync(peerDir, { recursive: true, force: true });
});

interface Ctx extends VaultCtx {
  readonly erase: EraseDeps;
}

async function withErasure(vault: VaultCtx): Promise<Ctx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sealpost-vault-ret-'));
  return {
    ...vault,
    erase: {
      ...vault.deps,
      leases: vault.stores.leases,
      audit: new BusAuditPublisher(vaultBus),
      auditProofs,
      erasures: vault.stores.erasures,
      operations: vault.stores.operations,
      signer: await openLocalReceiptSigner({ dataDir: dir, mode: 'embedded' }),
    },
    async close() {
      await vault.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeRepositoryContract<Ctx>(
  'contact-vault retention schedule',
  {
    sqlite: async (env) => withErasure(await sqliteVault(env)),
    mongo: async (env) => withErasure(await mongoVault(env)),
  },
  (ctx) => {
    it('one replica sweeps under the lease, erasing and reporting counts; the standby takes over', async () => {
      const { erase, stores } = ctx();
      const old = { ...erase, now: () => LONG_AGO };
      const stale: string[] = [];
      for (let i = 0; i < 3; i++) {
        stale.push((await upsertContact(old, { tenantId: T1, fields: { email: `old${i}@example.com` } })).contactId);
      }
      stale.push((await upsertContact(old, { tenantId: T2, fields: { phone: '+44 7911 200401' } })).contactId);
      const fresh = (await upsertContact(erase, { tenantId: T1, fields: { email: 'new@example.com' } })).contactId;

      const reports: { replica: string; report: RetentionReport }[] = [];
      const held: string[] = [];
      const replica = (name: string): RetentionSchedule =>
        new RetentionSchedule({
          deps: erase,
          policy: { all: 30, tenants: {} },
          tenants: () => stores.inventory.tenants(),
          leases: stores.leases,
          holder: `replica-${name}-${process.pid}`,
          everyMs: 3_600_000,
          leaseTtlMs: 1500,
          onSwept: (report) => reports.push({ replica: name, report }),
          onLeaseHeld: (h) => h && held.push(name),
        });
      const a = replica('a');
      const b = replica('b');
      a.start();
      const until = Date.now() + 60_000;
      while (reports.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      b.start();
      try {
        expect(reports).toEqual([
          {
            replica: 'a',
            report: {
              dryRun: false,
              tenants: {
                [T1]: { days: 30, due: 3, erased: 3, failed: 0 },
                [T2]: { days: 30, due: 1, erased: 1, failed: 0 },
              },
            },
          },
        ]);
        for (const id of stale.slice(0, 3)) expect(await stores.contacts.get(T1, id)).toBeUndefined();
        expect(await stores.contacts.get(T2, stale[3]!)).toBeUndefined();
        expect(await stores.contacts.get(T1, fresh)).toBeDefined();
        // Every erasure went the audited way: a tombstone, and an operation finished with its signed receipt.
        for (const id of stale.slice(0, 3)) {
          const tombstone = await stores.contacts.tombstone(T1, id);
          const op = await stores.operations.get(`op_${tombstone!.erasureId}`);
          expect(op).toMatchObject({ done: true, errorReason: '' });
          expect(op!.result.split('.')).toHaveLength(3);
        }

        // The standby does not sweep while the holder lives.
        await new Promise((r) => setTimeout(r, 1000));
        expect(b.leading).toBe(false);
        expect(await b.runNow()).toBeUndefined();
        expect(held).toEqual(['a']);

        // The holder stops; the standby takes the lease over and sweeps at once (nothing left to erase).
        await a.stop();
        while (reports.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        expect(held).toEqual(['a', 'b']);
        expect(reports[1]).toEqual({
          replica: 'b',
          report: {
            dryRun: false,
            tenants: {
              [T1]: { days: 30, due: 0, erased: 0, failed: 0 },
              [T2]: { days: 30, due: 0, erased: 0, failed: 0 },
            },
          },
        });
      } finally {
        await a.stop();
        await b.stop();
      }
    }, 120_000);
  },
);
