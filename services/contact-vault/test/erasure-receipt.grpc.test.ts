/**
 * Erasure receipts against the REAL audit service (no stand-in): the vault and the audit service each serve gRPC over
 * mutual TLS with dev-CA certificates, on one embedded bus, with tree heads signed every second (from the audit's
 * configuration). An erasure completes only once its audit entry is appended and signed; its receipt's proof
 * verifies against the audit's signed head; any tampering with the proof, the head or the leaf fails verification;
 * with the audit service down the erasure fails closed (AUDIT_UNAVAILABLE, no receipt) and erasing again after it
 * is back resumes the same operation with the same audit entry.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openDevCa, openDevTokenIssuer, writeDevTlsFiles, type IssuedCertificate } from '@sealpost/access';
import { decodeAuditEntry, leafHash } from '@sealpost/audit-format';
import { EmbeddedBus, type ServiceBus } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { LocalEd25519JwsSigner } from '@sealpost/crypto';
import { auditV1, vaultV1 } from '@sealpost/proto';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { openLocalReceiptSigner } from '../src/adapters/signing/local-receipt-signer';
import { GrpcAuditProofs } from '../src/adapters/grpc/grpc-audit-proofs';
import {
  ERASURE_RECEIPT_TYP,
  verifyErasureReceipt,
  type ErasureReceipt,
  type ReceiptProblem,
} from '../src/app/erasure-receipt';
import type { ReceiptSigner } from '../src/ports/receipt-signer';
import { startContactVaultService, type RunningContactVaultService } from '../src/service';
import { freePort, startAuditPeer, type AuditPeer } from './support/audit-peer';

const T = 't-receipts';
const PURPOSE = { 'x-sealpost-purpose': 'subject-access', 'x-sealpost-ticket': 'DPO-77' };
const VaultClient = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');
const AuditClient = grpc.makeGenericClientConstructor(auditV1.AuditLogService, 'AuditLog');
const TYPES: Record<string, { fromPartial(o: object): unknown }> = {
  upsertContact: vaultV1.UpsertContactRequest,
  eraseContact: vaultV1.EraseContactRequest,
  getOperation: vaultV1.GetOperationRequest,
  findContacts: vaultV1.FindContactsRequest,
  revealContact: vaultV1.RevealContactRequest,
  getSignedTreeHead: auditV1.GetSignedTreeHeadRequest,
  getInclusionProof: auditV1.GetInclusionProofRequest,
  queryEntries: auditV1.QueryEntriesRequest,
};

interface Result<T> {
  response?: T;
  error?: grpc.ServiceError;
  reason?: string;
}

const payloadOf = (jws: string): ErasureReceipt =>
  JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8')) as ErasureReceipt;

describe('erasure receipts with the real audit service (mutual TLS, embedded bus)', () => {
  let dir: TempDir;
  let vaultDataDir: string;
  let shared: EmbeddedBus;
  let vaultBus: ServiceBus;
  let audit: AuditPeer;
  let vault: RunningContactVaultService;
  let vaultClient: grpc.Client;
  let auditClient: grpc.Client;
  let receiptSigner: ReceiptSigner;
  const tokens: Record<string, string> = {};

  const call = <T>(
    client: grpc.Client,
    method: string,
    request: object,
    token: string | undefined,
    extra: Record<string, string> = {},
  ): Promise<Result<T>> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      for (const [k, v] of Object.entries(extra)) md.set(k, v);
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(
        client,
        TYPES[method]!.fromPartial(request),
        md,
        { deadline: Date.now() + 20_000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (!error) return resolve({ response });
          const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
          resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
        },
      );
    });

  const upsert = async (email: string): Promise<string> => {
    const r = await call<vaultV1.UpsertContactResponse>(
      vaultClient,
      'upsertContact',
      { tenantId: T, fields: { email } },
      tokens.admin,
    );
    expect(r.error).toBeUndefined();
    return r.response!.contactId;
  };

  /** Starts an erasure and polls it to the end; `seen` collects every progress value reported while running. */
  const erase = async (contactId: string, seen: number[] = [], keep = true): Promise<vaultV1.Operation> => {
    const started = await call<vaultV1.Operation>(
      vaultClient,
      'eraseContact',
      { tenantId: T, contactId, keepSuppressionTombstone: keep },
      tokens.dpo,
      PURPOSE,
    );
    expect(started.error).toBeUndefined();
    let op = started.response!;
    const until = Date.now() + 30_000;
    while (!op.done && Date.now() < until) {
      seen.push(op.progress);
      await new Promise((r) => setTimeout(r, 50));
      const r = await call<vaultV1.Operation>(vaultClient, 'getOperation', { operationId: op.operationId }, tokens.dpo);
      expect(r.error).toBeUndefined();
      op = r.response!;
    }
    return op;
  };

  const keys = async () => ({ receipt: [receiptSigner.publicJwk], audit: await audit.publicKeys() });

  /** Erase entries of a contact in the audit log, as an auditor of the tenant reads them. */
  const eraseEntries = async (contactId: string): Promise<auditV1.Entry[]> => {
    const r = await call<auditV1.QueryEntriesResponse>(
      auditClient,
      'queryEntries',
      { tenantId: T, contactId, action: 'contact.erase' },
      tokens.auditor,
    );
    expect(r.error).toBeUndefined();
    return r.response!.entries;
  };

  beforeAll(async () => {
    dir = tempDir('sealpost-vault-receipts-');
    const pki = path.join(dir.path, 'pki');
    vaultDataDir = path.join(dir.path, 'vault-data');
    const issuerDir = path.join(dir.path, 'identity');
    const issuer = await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    tokens.admin = await issuer.issue({ tenant: T, role: 'admin', subject: 'op-admin-1', mfa: true });
    tokens.dpo = await issuer.issue({ tenant: T, role: 'dpo', subject: 'op-dpo-1', mfa: true });
    tokens.support = await issuer.issue({ tenant: T, role: 'support', subject: 'op-support-1', mfa: true });
    tokens.auditor = await issuer.issue({ tenant: T, role: 'auditor', subject: 'op-auditor-1' });

    shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    const jwksFile = path.join(issuerDir, 'jwks.json');
    audit = await startAuditPeer({ dir: dir.path, pki, shared, jwksFile, sthEverySeconds: 1 });

    const vaultTls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'contact-vault' });
    const config = loadConfig('contact-vault', {
      SEALPOST_DATA_DIR: vaultDataDir,
      SEALPOST_JWKS_FILE: jwksFile,
      SEALPOST_TLS_CA_FILE: vaultTls.caFile,
      SEALPOST_TLS_CERT_FILE: vaultTls.certFile,
      SEALPOST_TLS_KEY_FILE: vaultTls.keyFile,
      SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
      // Where the vault dials the audit service, and how long an erasure waits for its proof.
      SEALPOST_AUDIT_GRPC_ADDR: audit.address,
      SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS: '3',
    });
    vaultBus = shared.forService('contact-vault');
    vault = await startContactVaultService({ config, bus: vaultBus, relayPollMs: 20 });
    receiptSigner = await openLocalReceiptSigner({ dataDir: vaultDataDir, mode: 'embedded' });

    const ca = await openDevCa({ dir: pki, mode: 'test' });
    const cli: IssuedCertificate = await ca.issue({ service: 'cli', usage: 'client' });
    const creds = grpc.credentials.createSsl(
      Buffer.from(ca.certPem),
      Buffer.from(cli.keyPem),
      Buffer.from(cli.certPem),
    );
    vaultClient = new VaultClient(vault.endpoint.grpc, creds);
    auditClient = new AuditClient(audit.address, creds);
  }, 60_000);

  afterAll(async () => {
    vaultClient?.close();
    auditClient?.close();
    await vault?.stop(1000);
    await vaultBus?.close().catch(() => undefined);
    await audit?.stop();
    await shared?.close();
    dir?.cleanup();
  });

  let receiptJws = '';
  let erasedContact = '';

  it('completes only once the audit entry is appended and signed; the receipt proof verifies against the signed head', async () => {
    // An audited lookup first, so the erasure is not the only leaf and its proof has hashes.
    const other = await upsert('someone.else@example.com');
    const found = await call<vaultV1.FindContactsResponse>(
      vaultClient,
      'findContacts',
      { tenantId: T, by: { $case: 'email', value: 'someone.else@example.com' } },
      tokens.support,
    );
    expect(found.response?.contacts.map((c) => c.contactId)).toEqual([other]);

    erasedContact = await upsert('erase.me@example.com');
    const op = await erase(erasedContact);
    expect(op).toMatchObject({ kind: 'erase-contact', done: true, errorReason: '', progress: 1 });
    receiptJws = op.result;

    const verified = await verifyErasureReceipt(receiptJws, await keys());
    if (!verified.ok) throw new Error(`receipt did not verify: ${verified.problem}: ${verified.detail}`);
    const receipt = verified.receipt;
    expect(receipt).toMatchObject({ format: 'sealpost-erasure-receipt/1', tenantId: T, contactId: erasedContact });
    expect(receipt.inclusionProof.hashes.length).toBeGreaterThan(0);
    expect(receipt.kept.map((k) => k.what)).toEqual([
      'tombstone',
      'erasure ledger entry',
      'suppression tombstone',
      'audit log entry',
    ]);
    // The entry is the erasure, recorded with the acting operator and the stated purpose, ids and codes only.
    expect(verified.entry).toMatchObject({
      entryId: receipt.auditEventId,
      sourceService: 'vault',
      tenantId: T,
      action: 'contact.erase',
      actorKind: 'operator',
      actorId: 'op-dpo-1',
      resourceIds: [erasedContact, receipt.erasureId],
      purposeCode: 'subject-access',
      ticketRef: 'DPO-77',
      outcome: 'succeeded',
    });
    expect(JSON.stringify(receipt)).not.toMatch(/erase\.me|example\.com/);

    // The audit service itself holds exactly these bytes at this index and proves them the same way.
    const [entry] = await eraseEntries(erasedContact);
    expect(Buffer.from(entry!.canonical).toString('base64url')).toBe(receipt.auditEntry.canonical);
    expect(Number(entry!.leafIndex)).toBe(receipt.inclusionProof.leafIndex);
    const served = await call<auditV1.InclusionProof>(
      auditClient,
      'getInclusionProof',
      { entry: { $case: 'entryId', value: receipt.auditEventId }, treeSize: String(receipt.treeHead.treeSize) },
      tokens.auditor,
    );
    expect(served.error).toBeUndefined();
    expect(served.response!.hashes.map((h) => Buffer.from(h).toString('base64url'))).toEqual(
      receipt.inclusionProof.hashes,
    );
    const head = await call<auditV1.SignedTreeHead>(
      auditClient,
      'getSignedTreeHead',
      { treeSize: String(receipt.treeHead.treeSize) },
      tokens.auditor,
    );
    expect(head.response!.rootHash.toString('hex')).toBe(receipt.treeHead.rootHash);
  }, 60_000);

  describe('tampering', () => {
    /** The receipt payload changed by `edit` and signed again with the vault's own key (so only the audit checks can catch it). */
    const resigned = async (edit: (r: ErasureReceipt & Record<string, unknown>) => void): Promise<string> => {
      const r = structuredClone(payloadOf(receiptJws)) as ErasureReceipt & Record<string, unknown>;
      edit(r);
      return receiptSigner.sign(r, ERASURE_RECEIPT_TYP);
    };
    const problemOf = async (jws: string): Promise<ReceiptProblem | 'OK'> => {
      const v = await verifyErasureReceipt(jws, await keys());
      return v.ok ? 'OK' : v.problem;
    };
    const flip = (b64: string, at = 0): string => {
      const b = Buffer.from(b64, 'base64url');
      b[at] = b[at]! ^ 0x01;
      return b.toString('base64url');
    };
    type Mutable = { -readonly [K in keyof ErasureReceipt]: ErasureReceipt[K] } & Record<string, unknown>;
    const m = (r: unknown): Mutable => r as Mutable;

    it('fails for any change of a proof hash, the tree head or the leaf', async () => {
      expect(await problemOf(receiptJws)).toBe('OK');
      const cases: [string, (r: Mutable) => void, ReceiptProblem][] = [
        [
          'a proof hash',
          (r) =>
            (r.inclusionProof = {
              ...r.inclusionProof,
              hashes: r.inclusionProof.hashes.map((h, i) => (i === 0 ? flip(h) : h)),
            }),
          'INCLUSION_PROOF_INVALID',
        ],
        [
          'a proof hash dropped',
          (r) => (r.inclusionProof = { ...r.inclusionProof, hashes: r.inclusionProof.hashes.slice(1) }),
          'INCLUSION_PROOF_INVALID',
        ],
        [
          'the leaf index',
          (r) => (r.inclusionProof = { ...r.inclusionProof, leafIndex: r.inclusionProof.leafIndex === 0 ? 1 : 0 }),
          'INCLUSION_PROOF_INVALID',
        ],
        ['the root hash', (r) => (r.treeHead = { ...r.treeHead, rootHash: '00'.repeat(32) }), 'TREE_HEAD_MISMATCH'],
        [
          'the tree size (head and proof)',
          (r) => {
            r.treeHead = { ...r.treeHead, treeSize: r.treeHead.treeSize + 1 };
            r.inclusionProof = { ...r.inclusionProof, treeSize: r.treeHead.treeSize };
          },
          'TREE_HEAD_MISMATCH',
        ],
        [
          'the tree head signature',
          (r) => {
            const [h, p, s] = r.treeHead.jws.split('.');
            r.treeHead = { ...r.treeHead, jws: `${h}.${p}.${flip(s!, 5)}` };
          },
          'TREE_HEAD_SIGNATURE_INVALID',
        ],
        [
          'a byte of the canonical entry',
          (r) => (r.auditEntry = { ...r.auditEntry, canonical: flip(r.auditEntry.canonical, 20) }),
          'LEAF_HASH_MISMATCH',
        ],
        [
          'the canonical entry with its leaf hash recomputed',
          (r) => {
            const canonical = flip(r.auditEntry.canonical, 20);
            r.auditEntry = {
              ...r.auditEntry,
              canonical,
              leafHash: leafHash(Buffer.from(canonical, 'base64url')).toString('base64url'),
            };
          },
          'INCLUSION_PROOF_INVALID',
        ],
        ['the cited entry id', (r) => (r.auditEventId = 'another-entry'), 'AUDIT_ENTRY_MISMATCH'],
        ['the contact id', (r) => (r.contactId = 'ct_someone_else'), 'AUDIT_ENTRY_MISMATCH'],
      ];
      for (const [what, edit, problem] of cases) {
        expect([what, await problemOf(await resigned((r) => edit(m(r))))]).toEqual([what, problem]);
      }
    });

    it('fails for a genuine newer head the proof does not lead to, and for a genuine proof of another entry', async () => {
      const receipt = payloadOf(receiptJws);
      // A later head, genuinely signed by the audit service, once the log has grown.
      await upsert('later@example.com');
      await call(
        vaultClient,
        'findContacts',
        { tenantId: T, by: { $case: 'email', value: 'later@example.com' } },
        tokens.support,
      );
      const later = await (async () => {
        for (let i = 0; i < 100; i++) {
          const h = await call<auditV1.SignedTreeHead>(
            auditClient,
            'getSignedTreeHead',
            { treeSize: '0' },
            tokens.auditor,
          );
          if (Number(h.response!.treeSize) > receipt.treeHead.treeSize) return h.response!;
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error('no newer head');
      })();
      const newerHead = await resigned((r) => {
        m(r).treeHead = {
          logId: later.logId,
          treeSize: Number(later.treeSize),
          rootHash: later.rootHash.toString('hex'),
          timestamp: later.timestamp!.getTime(),
          kid: later.kid,
          jws: later.jws,
        };
        m(r).inclusionProof = { ...r.inclusionProof, treeSize: Number(later.treeSize) };
      });
      expect(await problemOf(newerHead)).toBe('INCLUSION_PROOF_INVALID');

      // A genuine entry, genuinely proven — but the lookup's, not this erasure's.
      const lookups = await call<auditV1.QueryEntriesResponse>(
        auditClient,
        'queryEntries',
        { tenantId: T, action: 'contact.find' },
        tokens.auditor,
      );
      const lookup = lookups.response!.entries[0]!;
      const proof = await call<auditV1.InclusionProof>(
        auditClient,
        'getInclusionProof',
        { entry: { $case: 'entryId', value: lookup.entryId }, treeSize: '0' },
        tokens.auditor,
      );
      const p = proof.response!;
      const otherEntry = await resigned((r) => {
        m(r).auditEntry = {
          entryId: lookup.entryId,
          canonical: Buffer.from(lookup.canonical).toString('base64url'),
          leafHash: Buffer.from(p.leafHash).toString('base64url'),
        };
        m(r).auditEventId = lookup.entryId;
        m(r).treeHead = {
          logId: p.treeHead!.logId,
          treeSize: Number(p.treeHead!.treeSize),
          rootHash: p.treeHead!.rootHash.toString('hex'),
          timestamp: p.treeHead!.timestamp!.getTime(),
          kid: p.treeHead!.kid,
          jws: p.treeHead!.jws,
        };
        m(r).inclusionProof = {
          leafIndex: Number(p.leafIndex),
          treeSize: Number(p.treeSize),
          hashes: p.hashes.map((h) => Buffer.from(h).toString('base64url')),
        };
      });
      expect(decodeAuditEntry(lookup.canonical).action).toBe('contact.find');
      expect(await problemOf(otherEntry)).toBe('AUDIT_ENTRY_MISMATCH');
    }, 60_000);

    it('fails for an edited receipt not signed again, and against another audit key', async () => {
      const [h, , s] = receiptJws.split('.');
      const edited = Buffer.from(JSON.stringify({ ...payloadOf(receiptJws), kept: [] })).toString('base64url');
      expect(await problemOf(`${h}.${edited}.${s}`)).toBe('RECEIPT_SIGNATURE_INVALID');

      const stranger = await LocalEd25519JwsSigner.fromFile(path.join(dir.path, 'stranger.key'), { typ: 'x' });
      const foreign = await verifyErasureReceipt(receiptJws, {
        receipt: [receiptSigner.publicJwk],
        audit: [await stranger.publicJwk()],
      });
      expect(foreign).toMatchObject({ ok: false, problem: 'TREE_HEAD_SIGNATURE_INVALID' });
      const wrongReceiptKey = await verifyErasureReceipt(receiptJws, {
        receipt: [await stranger.publicJwk()],
        audit: await audit.publicKeys(),
      });
      expect(wrongReceiptKey).toMatchObject({ ok: false, problem: 'RECEIPT_SIGNATURE_INVALID' });
    });
  });

  it('fails closed with the audit service down (AUDIT_UNAVAILABLE, no receipt); erasing again resumes it with the same entry', async () => {
    const id = await upsert('erase.later@example.com');
    await audit.stop();
    const seen: number[] = [];
    const failed = await erase(id, seen);
    expect(failed).toMatchObject({ done: true, errorReason: 'AUDIT_UNAVAILABLE', result: '' });
    // Progress moved while the vault waited for the audit service.
    expect(seen.some((p) => p > 0.75 && p < 1)).toBe(true);
    // The erasure itself stands: the contact is gone, only the receipt is missing.
    const gone = await call(vaultClient, 'revealContact', { tenantId: T, contactId: id }, tokens.dpo, PURPOSE);
    expect(gone.error?.code).toBe(grpc.status.NOT_FOUND);

    await audit.start();
    // The retry asks for no suppression tombstone, but the first attempt kept one: the receipt says what was kept.
    const resumed = await erase(id, [], false);
    expect(resumed).toMatchObject({ operationId: failed.operationId, done: true, errorReason: '', progress: 1 });
    const verified = await verifyErasureReceipt(resumed.result, await keys());
    expect(verified).toMatchObject({ ok: true });
    expect(payloadOf(resumed.result).kept.map((k) => k.what)).toContain('suppression tombstone');
    // One erasure, one audit entry: the resumed attempt published the first attempt's event again.
    const entries = await eraseEntries(id);
    expect(entries.map((e) => e.entryId)).toEqual([payloadOf(resumed.result).auditEventId]);
    // A further EraseContact returns the finished operation and its receipt.
    const again = await erase(id);
    expect(again.result).toBe(resumed.result);
  }, 60_000);

  it('dials only the audit service of its trust domain: another service presenting its certificate is refused', async () => {
    const vaultTls = await writeDevTlsFiles({ dir: path.join(dir.path, 'pki'), mode: 'test', service: 'consent' });
    // The vault's own listener speaks the same CA, but its certificate names spiffe://…/contact-vault.
    const impostor = new GrpcAuditProofs({
      address: vault.endpoint.grpc,
      tls: vaultTls,
      trustDomain: audit.config.trustDomain,
      maxWaitMs: 800,
      backoff: { initialMs: 100, maxMs: 200 },
    });
    await expect(impostor.awaitInclusion(payloadOf(receiptJws).auditEventId)).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
    });
    // The same adapter pointed at the audit service gets the proof.
    const genuine = await audit.proofsForVault(5000);
    const inclusion = await genuine.awaitInclusion(payloadOf(receiptJws).auditEventId);
    expect(inclusion.leafIndex).toBe(payloadOf(receiptJws).inclusionProof.leafIndex);
  });
});
