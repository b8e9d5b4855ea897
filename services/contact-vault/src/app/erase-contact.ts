import { randomBytes } from 'node:crypto';
import { KeyNotFoundError, NORM_VERSION, suppressionHash, type BlindIndexFieldKind } from '@sealpost/crypto';
import { VaultError, assertContactId, assertTenantId, fromOpened } from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import type { ErasureRepository } from '../ports/erasure-repository';
import type { OperationRecord, OperationRepository } from '../ports/operation-repository';
import type { ReceiptSigner } from '../ports/receipt-signer';
import { contactErasedEvent } from './contact-events';
import type { StatedPurpose } from './reveal-contact';
import { indexKeyOf, type VaultDeps } from './vault-deps';

/** Audit action of an erasure; subject token `contact_erase`. */
export const ERASE_AUDIT_ACTION = 'contact.erase';
export const ERASURE_RECEIPT_TYP = 'sealpost-erasure-receipt+jws';

export type EraseDeps = VaultDeps & {
  readonly audit: AuditPublisher;
  readonly erasures: ErasureRepository;
  readonly operations: OperationRepository;
  readonly signer: ReceiptSigner;
};

export interface EraseContactInput {
  readonly tenantId: string;
  readonly contactId: string;
  readonly actor: VaultAuditEvent['actor'];
  readonly purpose?: StatedPurpose;
  readonly keepSuppressionTombstone: boolean;
}

/** `er_` + base36 milliseconds + 16 hex: sortable, ids only. */
export function newErasureId(now = Date.now()): string {
  return `er_${now.toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}

const operationIdOf = (erasureId: string): string => `op_${erasureId}`;

/**
 * Starts an erasure and returns its operation at once (not done); `done` resolves when it finished. Re-erasing an
 * erased contact returns its operation (resuming the audit and receipt steps if they had failed).
 * Throws VaultError INVALID_ARGUMENT, CONTACT_NOT_FOUND before anything changes.
 */
export async function startEraseContact(
  deps: EraseDeps,
  input: EraseContactInput,
): Promise<{ operation: OperationRecord; done: Promise<OperationRecord> }> {
  assertTenantId(input.tenantId);
  assertContactId(input.contactId);
  const now = deps.now ?? (() => new Date());
  const existing = await deps.contacts.tombstone(input.tenantId, input.contactId);
  let erasureId: string;
  if (existing) {
    erasureId = existing.erasureId;
    const op = await deps.operations.get(operationIdOf(erasureId));
    if (op && op.done && op.errorReason === '') return { operation: op, done: Promise.resolve(op) };
  } else {
    if (!(await deps.contacts.get(input.tenantId, input.contactId))) {
      throw new VaultError('CONTACT_NOT_FOUND', 'no contact with this id in this tenant', 'contact_id');
    }
    erasureId = newErasureId(now().getTime());
  }
  const at = now();
  const operation: OperationRecord = {
    operationId: operationIdOf(erasureId),
    kind: 'erase-contact',
    tenantId: input.tenantId,
    done: false,
    progress: 0,
    result: '',
    errorReason: '',
    createdAt: at,
    updatedAt: at,
  };
  await deps.operations.save(operation);
  const done = runErasure(deps, input, operation, erasureId).catch(async (err: unknown) => {
    const reason = err instanceof VaultError ? err.code : String((err as { code?: unknown })?.code ?? 'INTERNAL');
    const failed = { ...operation, done: true, errorReason: reason, updatedAt: now() };
    await deps.operations.save(failed).catch(() => undefined);
    return failed;
  });
  return { operation, done };
}

async function runErasure(
  deps: EraseDeps,
  input: EraseContactInput,
  operation: OperationRecord,
  erasureId: string,
): Promise<OperationRecord> {
  const { tenantId, contactId } = input;
  const now = deps.now ?? (() => new Date());
  const step = async (progress: number): Promise<void> =>
    deps.operations.save({ ...operation, progress, updatedAt: now() });
  let suppressionKept = false;
  let erasedAt: Date;
  const tombstone = await deps.contacts.tombstone(tenantId, contactId);
  if (tombstone) {
    erasedAt = tombstone.erasedAt;
  } else {
    erasedAt = now();
    for (;;) {
      const contact = await deps.contacts.get(tenantId, contactId);
      if (!contact) throw new VaultError('CONTACT_NOT_FOUND', 'the contact vanished during its erasure', 'contact_id');
      // 1. Suppression tombstones need the values, so they are taken before the key is shredded.
      if (input.keepSuppressionTombstone) {
        try {
          const fields = fromOpened(await deps.cipher.open(tenantId, contactId, contact.record));
          const key = await deps.keys.suppressionKey(tenantId);
          for (const kind of ['email', 'phone'] as BlindIndexFieldKind[]) {
            const value = fields[kind];
            if (value === undefined) continue;
            const h = suppressionHash(key, kind, value, NORM_VERSION);
            await deps.erasures.putSuppression({ tenantId, ...h, erasureId, createdAt: erasedAt });
            suppressionKept = true;
          }
        } catch (err) {
          // An earlier attempt already shredded the key: the values are gone, and so is the chance of a tombstone.
          if (!(err instanceof KeyNotFoundError)) throw err;
        }
      }
      await step(0.2);
      // 2. The ledger entry first: a crash after the shred must still be re-applied after a key-store restore.
      await deps.erasures.appendLedger({ tenantId, contactId, erasureId, erasedAt });
      // 3. Crypto-shred: without the data key, no copy of the record (backups included) can be decrypted.
      await deps.cipher.shred(tenantId, contactId);
      await step(0.5);
      // 4. The tombstone replaces the contact and carries its pending `vault.contact.erased` event (outbox).
      const event = contactErasedEvent({
        tenantId,
        contactId,
        erasureId,
        suppressionKept,
        version: contact.version + 1,
        at: erasedAt,
      });
      if (await deps.contacts.erase(tenantId, contactId, contact.version, { erasureId, erasedAt }, event)) {
        // 5. Release the index entries so the addresses are free (a new contact with them is a new person).
        for (const index of contact.indexes) {
          await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
        }
        break;
      }
      // Updated concurrently (its data key is already gone, so the update's record is unreadable too): retry.
    }
  }
  await step(0.7);
  // 6. The operation completes only once the audit entry is durably acknowledged.
  const auditEventId = await deps.audit.record({
    tenantId,
    action: ERASE_AUDIT_ACTION,
    actor: input.actor,
    resourceIds: [contactId, erasureId],
    ...(input.purpose ? { purposeCode: input.purpose.code } : {}),
    ...(input.purpose?.ticket ? { ticketRef: input.purpose.ticket } : {}),
    outcome: 'succeeded',
  });
  const receipt = await deps.signer.sign(
    {
      iss: 'sealpost/contact-vault',
      tenantId,
      contactId,
      erasureId,
      erasedAt: erasedAt.toISOString(),
      auditEventId,
      erased: ['contact record', 'data key (crypto-shredded)', 'blind-index entries'],
      kept: [
        { what: 'tombstone', holds: 'tenant id, contact id, erasure id, erasure time' },
        { what: 'erasure ledger entry', holds: 'tenant id, contact id, erasure id, erasure time' },
        ...(suppressionKept || (tombstone !== undefined && input.keepSuppressionTombstone)
          ? [
              {
                what: 'suppression tombstone',
                holds: 'HMAC of the address under the tenant suppression key (pseudonymous)',
              },
            ]
          : []),
      ],
      // TODO(audit proofs): add the signed tree head and the inclusion proof of `auditEventId` once the vault asks
      // the audit service for them (AuditLog.GetInclusionProof).
      inclusionProof: null,
      issuedAt: now().toISOString(),
    },
    ERASURE_RECEIPT_TYP,
  );
  const finished: OperationRecord = { ...operation, done: true, progress: 1, result: receipt, updatedAt: now() };
  await deps.operations.save(finished);
  return finished;
}
