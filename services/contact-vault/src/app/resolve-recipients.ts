import { DecryptionError } from '@sealpost/crypto';
import { VaultError, assertContactId, assertTenantId, invalidField, type VaultQuotas } from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import { openVerified } from './open-verified';
import type { VaultDeps } from './vault-deps';

/** Audit action of one resolved batch; subject token `contact_resolve`. */
export const RESOLVE_AUDIT_ACTION = 'contact.resolve';
export const DEFAULT_RESOLVE_BATCH = 100;
/**
 * Upper bound of a batch: the audit service accepts at most 1,000 resource ids per entry and one id is the purpose
 * reference; 999 contact ids of 32 characters keep the event near 40 KiB, far under the NATS 1 MiB payload limit.
 */
export const MAX_RESOLVE_BATCH = 999;
export const MAX_RESOLVE_IDS = 100_000;
/** Campaign or message ids: one token of letters, digits, `_`, `-`, `:` (never free text). */
export const PURPOSE_REF = /^[A-Za-z0-9][A-Za-z0-9_:-]{0,99}$/;

export interface ResolvedRecipient {
  readonly contactId: string;
  readonly email: string;
  readonly phone: string;
}

export interface ResolvedBatch {
  readonly recipients: ResolvedRecipient[];
  /** Unknown, erased or unreadable ids of this batch. */
  readonly missingContactIds: string[];
  readonly auditEventId: string;
}

export interface ResolveRecipientsInput {
  readonly tenantId: string;
  readonly purposeRef: string;
  readonly contactIds: readonly string[];
  readonly actor: VaultAuditEvent['actor'];
  /** Key of the calling principal for the per-principal quota. */
  readonly principalKey: string;
  readonly batchSize?: number;
}

/**
 * Resolves addresses for sending, batch by batch, fail closed per batch: quotas are taken (per caller and per
 * purpose), the batch is decrypted and verified, ONE audit event naming the purpose reference and the batch's ids is
 * durably acknowledged, and only then is the batch yielded. A failed audit stops the stream (AUDIT_UNAVAILABLE) with
 * that batch's plaintext never yielded. Throws VaultError INVALID_ARGUMENT, QUOTA_EXCEEDED, AUDIT_UNAVAILABLE.
 */
export async function* resolveRecipients(
  deps: VaultDeps & { readonly audit: AuditPublisher; readonly quotas: VaultQuotas },
  input: ResolveRecipientsInput,
): AsyncGenerator<ResolvedBatch> {
  assertTenantId(input.tenantId);
  if (typeof input.purposeRef !== 'string' || !PURPOSE_REF.test(input.purposeRef)) {
    throw invalidField('purpose_ref', 'must be a campaign or message id (1–100 of A-Z a-z 0-9 _ - :)');
  }
  if (input.contactIds.length === 0) throw invalidField('contact_ids', 'must name at least one contact');
  if (input.contactIds.length > MAX_RESOLVE_IDS)
    throw invalidField('contact_ids', `must be at most ${MAX_RESOLVE_IDS}`);
  input.contactIds.forEach((id, i) => {
    try {
      assertContactId(id);
    } catch {
      throw invalidField(`contact_ids[${i}]`, 'is not a contact id');
    }
  });
  const batchSize = input.batchSize ?? DEFAULT_RESOLVE_BATCH;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_RESOLVE_BATCH) {
    throw new RangeError(`batch size must be 1–${MAX_RESOLVE_BATCH}`);
  }
  const ids = [...new Set(input.contactIds)];
  for (let start = 0; start < ids.length; start += batchSize) {
    const batch = ids.slice(start, start + batchSize);
    await deps.quotas.resolve.take(input.principalKey, batch.length, 'resolve');
    await deps.quotas.resolvePurpose.take(`${input.tenantId}/${input.purposeRef}`, batch.length, 'resolve per purpose');
    const recipients: ResolvedRecipient[] = [];
    const missingContactIds: string[] = [];
    for (const contactId of batch) {
      const contact = await deps.contacts.get(input.tenantId, contactId);
      if (!contact) {
        missingContactIds.push(contactId);
        continue;
      }
      try {
        const fields = await openVerified(deps, contact);
        recipients.push({ contactId, email: fields.email ?? '', phone: fields.phone ?? '' });
      } catch (err) {
        // One unreadable contact (erased meanwhile, tampered, swapped) must not stop a campaign: it is listed
        // as missing and never sent to. Infrastructure failures (KMS) still stop the stream.
        if (
          (err instanceof VaultError && (err.code === 'CONTACT_NOT_FOUND' || err.code === 'RECORD_SWAPPED')) ||
          err instanceof DecryptionError
        ) {
          missingContactIds.push(contactId);
          continue;
        }
        throw err;
      }
    }
    const auditEventId = await deps.audit.record({
      tenantId: input.tenantId,
      action: RESOLVE_AUDIT_ACTION,
      actor: input.actor,
      resourceIds: [`purpose:${input.purposeRef}`, ...recipients.map((r) => r.contactId)],
      outcome: 'granted',
    });
    yield { recipients, missingContactIds, auditEventId };
  }
}
