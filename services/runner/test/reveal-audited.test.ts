/**
 * The vault and the audit log together, as `pnpm start` runs them: a reveal in the vault appears in the audit
 * log with actor, purpose and contact id, `QueryEntries` by that contact finds it, and the entry has an
 * inclusion proof against a signed tree head. Over mutual TLS with dev-issuer operator tokens.
 */
import * as grpc from '@grpc/grpc-js';
import { auditV1, vaultV1 } from '@sealpost/proto';
import { waitFor } from '@sealpost/testkit';
import { caller, runnerClients, startRunner, type RunnerProcess } from './support/runner-process';

describe('a reveal in the vault is in the audit log', () => {
  let runner: RunnerProcess;
  let vault: grpc.Client;
  let audit: grpc.Client;
  let tokens: Record<string, string>;

  beforeAll(async () => {
    // Tree heads every second, so the inclusion proof is available without waiting for the default minute.
    runner = await startRunner({ SEALPOST_AUDIT_STH_EVERY_SECONDS: '1' });
    ({ vault, audit, tokens } = await runnerClients(runner, {
      admin: { role: 'admin', subject: 'op-admin' },
      support: { role: 'support', subject: 'op-support-7', mfa: true },
      auditor: { role: 'auditor', subject: 'op-auditor' },
    }));
  }, 40_000);

  afterAll(() => {
    vault?.close();
    audit?.close();
    runner?.stop();
  });

  it('records actor, purpose and contact id, finds it by contact, and proves its inclusion', async () => {
    const callVault = caller(vault);
    const callAudit = caller(audit);
    const upserted = await callVault<vaultV1.UpsertContactResponse>(
      'upsertContact',
      vaultV1.UpsertContactRequest.fromPartial({ tenantId: 'acme', fields: { email: 'ada@example.com' } }),
      tokens.admin!,
    );
    const revealed = await callVault<vaultV1.RevealContactResponse>(
      'revealContact',
      vaultV1.RevealContactRequest.fromPartial({ tenantId: 'acme', contactId: upserted.contactId }),
      tokens.support!,
      { 'x-sealpost-purpose': 'support-request', 'x-sealpost-ticket': 'OPS-1234' },
    );
    expect(revealed.fields?.email).toBe('ada@example.com');

    const query = auditV1.QueryEntriesRequest.fromPartial({ tenantId: 'acme', contactId: upserted.contactId });
    const found = (await waitFor(
      'the reveal in the audit log',
      async () => {
        const page = await callAudit<auditV1.QueryEntriesResponse>('queryEntries', query, tokens.auditor!);
        return page.entries.find((e) => e.entryId === revealed.auditEventId) ?? false;
      },
      { timeoutMs: 15_000 },
    )) as auditV1.Entry;
    expect(found).toMatchObject({
      sourceService: 'vault',
      tenantId: 'acme',
      action: 'contact.reveal',
      actor: { kind: { $case: 'operatorId', value: 'op-support-7' } },
      purposeCode: 'support-request',
      ticketRef: 'OPS-1234',
      outcome: 'granted',
    });
    expect(found.resourceIds).toContain(upserted.contactId);
    // No personal data in the entry: the revealed address is nowhere in its canonical bytes.
    expect(Buffer.from(found.canonical).toString('latin1')).not.toContain('ada@example.com');

    // Once a tree head covers it, the entry has an inclusion proof.
    const proof = await waitFor(
      'a signed head covering the entry',
      () =>
        callAudit<auditV1.InclusionProof>(
          'getInclusionProof',
          auditV1.GetInclusionProofRequest.fromPartial({ entry: { $case: 'entryId', value: found.entryId } }),
          tokens.auditor!,
        ),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(proof.leafIndex).toBe(found.leafIndex);
    expect(proof.treeHead?.jws).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  }, 60_000);
});
