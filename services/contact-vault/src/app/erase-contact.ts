import { randomBytes } from 'node:crypto';
import { newEventId } from '@sealpost/bus';
import { newLeaseHolderId, type LeaseGrant, type LeaseStore } from '@sealpost/storage';
import { KeyNotFoundError, NORM_VERSION, suppressionHash, type BlindIndexFieldKind } from '@sealpost/crypto';
import { VaultError, assertContactId, assertTenantId, fromOpened } from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import type { AuditProofs } from '../ports/audit-proofs';
import type { ErasureRepository } from '../ports/erasure-repository';
import type { OperationAuditEvent, OperationRecord, OperationRepository } from '../ports/operation-repository';
import type { ReceiptSigner } from '../ports/receipt-signer';
import { contactErasedEvent } from './contact-events';
import {
  ERASE_AUDIT_ACTION,
  ERASURE_RECEIPT_FORMAT,
  ERASURE_RECEIPT_TYP,
  receiptAuditProof,
  type ErasureReceipt,
} from './erasure-receipt';
import type { StatedPurpose } from './reveal-contact';
import { indexKeyOf, type VaultDeps } from './vault-deps';

export { ERASE_AUDIT_ACTION, ERASURE_RECEIPT_TYP } from './erasure-receipt';

export type EraseDeps = VaultDeps & {
  /** Serialises the start of erasures of one contact across replicas (see `startEraseContact`). */
  readonly leases: LeaseStore;
  readonly audit: AuditPublisher;
  /** The signed tree head and inclusion proof of the erasure's audit entry, which the receipt carries. */
  readonly auditProofs: AuditProofs;
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

/** Long enough for the steps up to the tombstone (milliseconds unless KMS is slow); never renewed. */
const START_LEASE_TTL_MS = 30_000;
/** How long a second erasure of the same contact waits for the first to write its tombstone. */
const START_LEASE_WAIT_MS = 10_000;

/**
 * Takes the lease on erasing this contact: held from the first look for a tombstone until the tombstone is written,
 * so two erasures of one contact cannot both start. The second waits, then finds the first one's tombstone and
 * answers with its operation. Throws CONCURRENT_UPDATE if the first holds on for longer than the wait.
 */
async function takeStartLease(deps: EraseDeps, tenantId: string, contactId: string): Promise<() => Promise<void>> {
  const name = `erase:${tenantId}:${contactId}`;
  const holder = newLeaseHolderId('contact-vault');
  const giveUpAt = Date.now() + START_LEASE_WAIT_MS;
  let grant: LeaseGrant | null;
  while ((grant = await deps.leases.tryAcquire(name, holder, START_LEASE_TTL_MS)) === null) {
    if (Date.now() > giveUpAt) {
      throw new VaultError('CONCURRENT_UPDATE', 'another erasure of this contact is starting; retry');
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const held = grant;
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await deps.leases.release(held).catch(() => undefined); // it expires anyway
  };
}

/**
 * Starts an erasure and returns its operation at once (not done); `done` resolves when it finished: once the audit
 * entry is appended to the audit log and covered by a signed tree head, and the receipt citing it is signed.
 * Re-erasing an erased contact returns its operation, resuming the audit and receipt steps if they had failed (with
 * the audit event the first attempt fixed, so the log holds one entry for the erasure).
 * Throws VaultError INVALID_ARGUMENT, CONTACT_NOT_FOUND before anything changes.
 */
export async function startEraseContact(
  deps: EraseDeps,
  input: EraseContactInput,
): Promise<{ operation: OperationRecord; done: Promise<OperationRecord> }> {
  assertTenantId(input.tenantId);
  assertContactId(input.contactId);
  const release = await takeStartLease(deps, input.tenantId, input.contactId);
  try {
    return await startUnderLease(deps, input, release);
  } catch (err) {
    await release();
    throw err;
  }
}

async function startUnderLease(
  deps: EraseDeps,
  input: EraseContactInput,
  release: () => Promise<void>,
): Promise<{ operation: OperationRecord; done: Promise<OperationRecord> }> {
  const now = deps.now ?? (() => new Date());
  const existing = await deps.contacts.tombstone(input.tenantId, input.contactId);
  let erasureId: string;
  let previous: OperationRecord | undefined;
  if (existing) {
    erasureId = existing.erasureId;
    previous = await deps.operations.get(operationIdOf(erasureId));
    if (previous && previous.done && previous.errorReason === '') {
      await release();
      return { operation: previous, done: Promise.resolve(previous) };
    }
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
    createdAt: previous?.createdAt ?? at,
    updatedAt: at,
    // A resumed erasure keeps the audit event its first attempt fixed (and may already have published).
    ...(previous?.auditEvent ? { auditEvent: previous.auditEvent } : {}),
    ...(previous?.erasure ? { erasure: previous.erasure } : {}),
  };
  await deps.operations.save(operation);
  const run = new OperationProgress(deps.operations, operation, now);
  const done = runErasure(deps, input, run, erasureId, release).catch(async (err: unknown) => {
    await release();
    const reason = err instanceof VaultError ? err.code : String((err as { code?: unknown })?.code ?? 'INTERNAL');
    return run.finish({ errorReason: reason }).catch(() => ({ ...run.current, done: true, errorReason: reason }));
  });
  return { operation, done };
}

/** The operation record as a run advances it; every change is saved, so GetOperation sees it. */
class OperationProgress {
  constructor(
    private readonly operations: OperationRepository,
    public current: OperationRecord,
    private readonly now: () => Date,
  ) {}

  async update(change: Partial<Pick<OperationRecord, 'progress' | 'auditEvent' | 'erasure'>>): Promise<void> {
    const next = { ...this.current, ...change, updatedAt: this.now() };
    await this.operations.save(next);
    this.current = next;
  }

  async finish(outcome: { result: string } | { errorReason: string }): Promise<OperationRecord> {
    const finished: OperationRecord = {
      ...this.current,
      done: true,
      ...('result' in outcome ? { progress: 1, result: outcome.result } : { errorReason: outcome.errorReason }),
      updatedAt: this.now(),
    };
    this.current = finished;
    await this.operations.save(finished);
    return finished;
  }
}

async function runErasure(
  deps: EraseDeps,
  input: EraseContactInput,
  run: OperationProgress,
  erasureId: string,
  releaseStartLease: () => Promise<void>,
): Promise<OperationRecord> {
  const { tenantId, contactId } = input;
  const now = deps.now ?? (() => new Date());
  const step = (progress: number): Promise<void> => run.update({ progress });
  // A resumed erasure reports what its first attempt kept (recorded before that attempt shredded the key).
  let suppressionKept = run.current.erasure?.suppressionKept ?? false;
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
      await run.update({ progress: 0.2, erasure: { suppressionKept } });
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
  // The tombstone is there: another erasure of this contact now finds it and answers with this operation.
  await releaseStartLease();
  // 6. The audit event is fixed once and kept with the operation before it is published: a resumed erasure
  //    publishes the same event (same id, time, actor and purpose) again, and the stream and the log deduplicate it.
  const auditEvent: OperationAuditEvent = run.current.auditEvent ?? {
    eventId: newEventId(),
    occurredAt: erasedAt.getTime(),
    event: {
      tenantId,
      action: ERASE_AUDIT_ACTION,
      actor: input.actor,
      resourceIds: [contactId, erasureId],
      ...(input.purpose ? { purposeCode: input.purpose.code } : {}),
      ...(input.purpose?.ticket ? { ticketRef: input.purpose.ticket } : {}),
      outcome: 'succeeded',
    },
  };
  await run.update({ progress: 0.7, auditEvent });
  const published = await deps.audit.publishEntry(
    auditEvent.event,
    auditEvent.eventId,
    new Date(auditEvent.occurredAt),
  );
  await step(0.75);
  // 7. The operation completes only once the entry is appended and signed: the receipt cites it with the signed
  //    tree head and its inclusion proof, checked here against the bytes the vault published.
  const inclusion = await deps.auditProofs.awaitInclusion(published.entryId, {
    onWaiting: (waited, bound) => step(0.75 + 0.2 * Math.min(1, waited / bound)),
  });
  const proof = receiptAuditProof(published, inclusion, { tenantId, contactId, erasureId });
  const receipt: ErasureReceipt = {
    format: ERASURE_RECEIPT_FORMAT,
    iss: 'sealpost/contact-vault',
    tenantId,
    contactId,
    erasureId,
    erasedAt: erasedAt.toISOString(),
    auditEventId: published.entryId,
    erased: ['contact record', 'data key (crypto-shredded)', 'blind-index entries'],
    kept: [
      { what: 'tombstone', holds: 'tenant id, contact id, erasure id, erasure time' },
      { what: 'erasure ledger entry', holds: 'tenant id, contact id, erasure id, erasure time' },
      ...(suppressionKept
        ? [
            {
              what: 'suppression tombstone',
              holds: 'HMAC of the address under the tenant suppression key (pseudonymous)',
            },
          ]
        : []),
      {
        what: 'audit log entry',
        holds: 'entry id, tenant id, contact id, erasure id, actor id, purpose code, ticket reference, time',
      },
    ],
    ...proof,
    issuedAt: now().toISOString(),
  };
  return run.finish({ result: await deps.signer.sign(receipt, ERASURE_RECEIPT_TYP) });
}
