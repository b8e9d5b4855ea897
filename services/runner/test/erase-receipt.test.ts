/**
 * An erasure through `pnpm start` (the real runner process): the vault dials the audit service with its own
 * certificate, the erasure completes once the audit log has appended and signed its entry, and the receipt verifies
 * with the two public keys the deployment publishes — the receipt key and the audit's tree-head key — and agrees
 * with what the audit service itself serves.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LocalEd25519Signer } from '@sealpost/audit';
import { localReceiptPublicJwk, verifyErasureReceipt } from '@sealpost/contact-vault';
import { auditV1, vaultV1 } from '@sealpost/proto';
import { waitFor } from '@sealpost/testkit';
import { caller, runnerClients, startRunner, type RunnerProcess } from './support/runner-process';

describe('an erasure through the runner carries a verifiable audit proof', () => {
  let runner: RunnerProcess;
  let vault: grpc.Client;
  let audit: grpc.Client;
  let tokens: Record<string, string>;

  beforeAll(async () => {
    // Tree heads every second (audit configuration), so the erasure does not wait for the default minute.
    runner = await startRunner({ SEALPOST_AUDIT_STH_EVERY_SECONDS: '1' });
    ({ vault, audit, tokens } = await runnerClients(runner, {
      admin: { role: 'admin', subject: 'op-admin' },
      dpo: { role: 'dpo', subject: 'op-dpo-3', mfa: true },
      auditor: { role: 'auditor', subject: 'op-auditor' },
    }));
  }, 40_000);

  afterAll(() => {
    vault?.close();
    audit?.close();
    runner?.stop();
  });

  it('completes with a receipt whose inclusion proof verifies against the audit service’s signed head', async () => {
    const callVault = caller(vault);
    const callAudit = caller(audit);
    const { contactId } = await callVault<vaultV1.UpsertContactResponse>(
      'upsertContact',
      vaultV1.UpsertContactRequest.fromPartial({ tenantId: 'acme', fields: { email: 'grace@example.com' } }),
      tokens.admin!,
    );
    const started = await callVault<vaultV1.Operation>(
      'eraseContact',
      vaultV1.EraseContactRequest.fromPartial({ tenantId: 'acme', contactId }),
      tokens.dpo!,
      { 'x-sealpost-purpose': 'subject-access' },
    );
    const op = (await waitFor(
      'the erasure to finish',
      async () => {
        const o = await callVault<vaultV1.Operation>('getOperation', { operationId: started.operationId }, tokens.dpo!);
        return o.done ? o : false;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )) as vaultV1.Operation;
    expect(op).toMatchObject({ done: true, errorReason: '', progress: 1 });

    // The keys the deployment publishes (contacts receipt-public-key, audit public-key), from the runner's data.
    const verified = await verifyErasureReceipt(op.result, {
      receipt: [await localReceiptPublicJwk(runner.dataDir)],
      audit: [await LocalEd25519Signer.publicJwkFromFile(path.join(runner.dataDir, 'audit', 'sth-signing.jwk.json'))],
    });
    if (!verified.ok) throw new Error(`${verified.problem}: ${verified.detail}`);
    expect(verified.entry).toMatchObject({ action: 'contact.erase', actorId: 'op-dpo-3', tenantId: 'acme' });

    // The audit service proves the same leaf to the same root at that size.
    const r = verified.receipt;
    const served = await callAudit<auditV1.InclusionProof>(
      'getInclusionProof',
      auditV1.GetInclusionProofRequest.fromPartial({
        entry: { $case: 'entryId', value: r.auditEventId },
        treeSize: String(r.treeHead.treeSize),
      }),
      tokens.auditor!,
    );
    expect(Number(served.leafIndex)).toBe(r.inclusionProof.leafIndex);
    expect(Buffer.from(served.leafHash).toString('base64url')).toBe(r.auditEntry.leafHash);
    expect(served.hashes.map((h) => Buffer.from(h).toString('base64url'))).toEqual(r.inclusionProof.hashes);
    expect(JSON.stringify(r)).not.toContain('grace@example.com');
  }, 60_000);
});
