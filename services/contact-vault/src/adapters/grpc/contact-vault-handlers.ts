/**
 * gRPC handlers of `sealpost.vault.v1.ContactVault`. Every object
 * access checks the tenant against the principal (the interceptor checks request messages too); every error goes
 * through `toAppError`. Nothing here logs or returns a plaintext value.
 */
import { assertTenantAccess, principalId, type Principal } from '@sealpost/access';
import { AppError, requestIdOf, serverStreaming, unary, type CallContext, type Idempotency } from '@sealpost/server';
import type { vaultV1 } from '@sealpost/proto';
import type { LeaseStore } from '@sealpost/storage';
import { startEraseContact } from '../../app/erase-contact';
import { exportContact } from '../../app/export-contact';
import { findContacts } from '../../app/find-contacts';
import { contactFieldsFingerprint } from '../../app/request-fingerprint';
import { resolveRecipients } from '../../app/resolve-recipients';
import { revealContact, type StatedPurpose } from '../../app/reveal-contact';
import { startRotateTenantKey } from '../../app/rotate-tenant-key';
import { VaultError, invalidField, type VaultQuotas } from '../../domain';
import type { ErasureRepository } from '../../ports/erasure-repository';
import type { KeyInventory } from '../../ports/key-inventory';
import type { OperationRecord, OperationRepository } from '../../ports/operation-repository';
import type { ReceiptSigner } from '../../ports/receipt-signer';
import { getContact } from '../../app/get-contact';
import { importContacts, type ImportRow } from '../../app/import-contacts';
import { listContacts } from '../../app/list-contacts';
import type { MaskedContactView } from '../../app/masked-contact';
import { upsertContact, type UpsertContactResult } from '../../app/upsert-contact';
import type { VaultDeps } from '../../app/vault-deps';
import type { AuditPublisher, VaultAuditEvent } from '../../ports/audit-publisher';
import type { AuditProofs } from '../../ports/audit-proofs';
import { bidiStreaming } from './bidi-streaming';
import { toAppError } from './error-mapping';
import { VaultMetrics, outcomeOf } from './vault-metrics';

export interface ContactVaultHandlerDeps extends VaultDeps {
  readonly audit: AuditPublisher;
  /** Signed tree heads and inclusion proofs for erasure receipts. */
  readonly auditProofs: AuditProofs;
  readonly idempotency: Idempotency;
  readonly quotas: VaultQuotas;
  readonly erasures: ErasureRepository;
  readonly operations: OperationRepository;
  readonly inventory: KeyInventory;
  /** Leases shared by every replica (one rotation per tenant key at a time). */
  readonly leases: LeaseStore;
  readonly signer: ReceiptSigner;
  /** Contacts per ResolveRecipients batch (one audit event each); default 100. */
  readonly resolveBatchSize?: number;
  /** Rows per ImportContacts batch (one transaction per store); default: importContacts' own. */
  readonly importBatchRows?: number;
  /** Service identity allowed to resolve addresses (checked here as well as in the table); default `dispatch`. */
  readonly resolverService?: string;
  readonly metrics?: VaultMetrics;
}

/**
 * The purpose the access interceptor validated (metadata). A purpose also given in the request body must be the
 * same, so the audited purpose is never different from the one the caller believes it stated.
 */
function purposeOf(ctx: CallContext, requested: { code: string; ticketRef: string } | undefined): StatedPurpose {
  const stated = ctx.access.purpose;
  if (!stated)
    throw new AppError('INVALID_ARGUMENT', 'PURPOSE_REQUIRED', 'field `purpose` is required: a purpose code');
  if (requested && (requested.code !== '' || requested.ticketRef !== '')) {
    if (requested.code !== stated.code || requested.ticketRef !== (stated.ticket ?? '')) {
      throw new AppError(
        'INVALID_ARGUMENT',
        'PURPOSE_MISMATCH',
        'purpose: differs from the purpose in the call metadata',
      );
    }
  }
  return { code: stated.code, ...(stated.ticket ? { ticket: stated.ticket } : {}) };
}

function operationToProto(op: OperationRecord): vaultV1.Operation {
  return {
    operationId: op.operationId,
    kind: op.kind,
    done: op.done,
    progress: op.progress,
    result: op.result,
    errorReason: op.errorReason,
  };
}

/** How long a start call waits for a fast operation to finish before answering with a running one. */
const OPERATION_INLINE_WAIT_MS = 2000;

async function settleBriefly(started: {
  operation: OperationRecord;
  done: Promise<OperationRecord>;
}): Promise<OperationRecord> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<OperationRecord>((resolve) => {
    timer = setTimeout(() => resolve(started.operation), OPERATION_INLINE_WAIT_MS);
  });
  try {
    return await Promise.race([started.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function handler<Req, Res>(fn: (request: Req, ctx: CallContext) => Promise<Res>) {
  return unary<Req, Res>(async (request, ctx) => {
    try {
      return await fn(request, ctx);
    } catch (err) {
      throw toAppError(err);
    }
  });
}

function toProto(view: MaskedContactView): vaultV1.MaskedContact {
  return {
    contactId: view.contactId,
    tenantId: view.tenantId,
    emailMasked: view.masked.email,
    phoneMasked: view.masked.phone,
    nameMasked: view.masked.name,
    version: String(view.version),
    createdAt: view.createdAt,
    updatedAt: view.updatedAt,
  };
}

function actorOf(principal: Principal): VaultAuditEvent['actor'] {
  return principal.kind === 'operator'
    ? { kind: 'operator', id: principal.subject }
    : { kind: 'service', id: principalId(principal) };
}

function fieldsOf(fields: vaultV1.ContactFields | undefined): { email: string; phone: string; name: string } {
  return { email: fields?.email ?? '', phone: fields?.phone ?? '', name: fields?.name ?? '' };
}

/** Rows one ImportContacts message may carry, and the most their field values may weigh together (UTF-8). */
export const MAX_IMPORT_ROWS_PER_MESSAGE = 1000;
export const MAX_IMPORT_MESSAGE_FIELD_BYTES = 1024 * 1024;

/** A row sent without fields: the use case rejects it as INVALID_ARGUMENT `fields`. */
const NO_FIELDS: vaultV1.ContactFields = Object.freeze({ email: '', phone: '', name: '' });

/** Refuses an ImportContacts message outside the per-message bounds, naming the field and never a value. */
function assertImportChunk(rows: readonly vaultV1.ImportContactsRow[]): void {
  if (rows.length === 0) throw invalidField('rows', 'a message needs at least one row');
  if (rows.length > MAX_IMPORT_ROWS_PER_MESSAGE) {
    throw invalidField('rows', `a message holds at most ${MAX_IMPORT_ROWS_PER_MESSAGE} rows`);
  }
  // Characters bound the UTF-8 size from below and 3× characters from above: bytes are counted only in between.
  let chars = 0;
  for (const r of rows) {
    const f = r.fields;
    if (f) chars += f.email.length + f.phone.length + f.name.length;
  }
  if (chars * 3 <= MAX_IMPORT_MESSAGE_FIELD_BYTES) return;
  let bytes = 0;
  for (const r of rows) {
    const f = r.fields;
    if (f) bytes += Buffer.byteLength(f.email) + Buffer.byteLength(f.phone) + Buffer.byteLength(f.name);
  }
  if (bytes > MAX_IMPORT_MESSAGE_FIELD_BYTES) {
    throw invalidField('rows', `a message holds at most ${MAX_IMPORT_MESSAGE_FIELD_BYTES} bytes of field values`);
  }
}

/** One counter update per outcome of an answered message, rather than one per row. */
function countImportOutcomes(
  metrics: VaultMetrics,
  tenantId: string,
  results: readonly vaultV1.ImportContactsRowResult[],
): void {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.result, (counts.get(r.result) ?? 0) + 1);
  for (const [outcome, count] of counts) metrics.contactWritten(tenantId, outcome, count);
}

/** Implementation of the ContactVault service over the vault's use cases. */
export function createContactVaultHandlers(deps: ContactVaultHandlerDeps): vaultV1.ContactVaultServer {
  const metrics = deps.metrics ?? new VaultMetrics();

  return {
    upsertContact: handler<vaultV1.UpsertContactRequest, vaultV1.UpsertContactResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const requestId = requestIdOf(ctx.metadata, req);
      const result = await (async () => {
        // Idempotency records are shared by every replica: the fields go in as a keyed fingerprint, never as values.
        const fields =
          requestId === undefined
            ? undefined
            : await contactFieldsFingerprint(deps.keys, req.tenantId, fieldsOf(req.fields));
        return deps.idempotency.run<UpsertContactResult>(
          { principal: principalId(ctx.principal), method: ctx.method, requestId },
          { tenantId: req.tenantId, fields },
          () => upsertContact(deps, { tenantId: req.tenantId, fields: fieldsOf(req.fields) }),
        );
      })().catch((err: unknown) => {
        metrics.contactWritten(req.tenantId, outcomeOf(toAppError(err)));
        throw err;
      });
      metrics.contactWritten(req.tenantId, result.created ? 'created' : result.changed ? 'updated' : 'unchanged');
      return { contactId: result.contactId, created: result.created, version: String(result.version) };
    }),

    importContacts: bidiStreaming<vaultV1.ImportContactsRequest, vaultV1.ImportContactsResponse>(
      async (requests, send, ctx) => {
        const principal = ctx.access.principal;
        // Request messages read but not yet answered, oldest first: each gets one response holding its rows' results.
        // Requests are read only as the use case asks for rows, so a client that outpaces the vault is held back by
        // gRPC flow control instead of being buffered here.
        const unanswered: { tenantId: string; rows: number }[] = [];
        async function* rows(): AsyncGenerator<ImportRow> {
          for await (const req of requests) {
            // Every message is checked: one stream cannot mix in another tenant's rows.
            assertTenantAccess(principal, req.tenantId);
            assertImportChunk(req.rows);
            unanswered.push({ tenantId: req.tenantId, rows: req.rows.length });
            for (const r of req.rows) yield { tenantId: req.tenantId, row: r.row, fields: r.fields ?? NO_FIELDS };
          }
        }
        let results: vaultV1.ImportContactsRowResult[] = [];
        const options = deps.importBatchRows !== undefined ? { batchSize: deps.importBatchRows } : {};
        for await (const result of importContacts(deps, rows(), options)) {
          results.push(result);
          const answered = unanswered[0]!;
          if (results.length < answered.rows) continue;
          unanswered.shift();
          countImportOutcomes(metrics, answered.tenantId, results);
          await send({ results });
          results = [];
        }
      },
      toAppError,
    ),

    getContact: handler<vaultV1.GetContactRequest, vaultV1.GetContactResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      return { contact: toProto(await getContact(deps, { tenantId: req.tenantId, contactId: req.contactId })) };
    }),

    listContacts: handler<vaultV1.ListContactsRequest, vaultV1.ListContactsResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const page = await listContacts(deps, {
        tenantId: req.tenantId,
        ...(req.page?.pageSize ? { pageSize: req.page.pageSize } : {}),
        ...(req.page?.pageToken ? { pageToken: req.page.pageToken } : {}),
      });
      return { contacts: page.contacts.map(toProto), nextPageToken: page.nextPageToken };
    }),

    findContacts: handler<vaultV1.FindContactsRequest, vaultV1.FindContactsResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      if (!req.by) throw new AppError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'by: set email or phone');
      await deps.quotas.find.take(principalId(ctx.principal), 1, 'find');
      const result = await findContacts(deps, {
        tenantId: req.tenantId,
        by: { field: req.by.$case, value: req.by.value },
        actor: actorOf(ctx.principal),
      });
      return { contacts: result.contacts.map(toProto) };
    }),

    revealContact: handler<vaultV1.RevealContactRequest, vaultV1.RevealContactResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const purpose = purposeOf(ctx, req.purpose);
      let result: Awaited<ReturnType<typeof revealContact>>;
      try {
        await deps.quotas.reveal.take(principalId(ctx.principal), 1, 'reveal');
        result = await revealContact(deps, {
          tenantId: req.tenantId,
          contactId: req.contactId,
          actor: actorOf(ctx.principal),
          purpose,
        });
      } catch (err) {
        metrics.revealed(req.tenantId, purpose.code, outcomeOf(toAppError(err)));
        throw err;
      }
      metrics.revealed(req.tenantId, purpose.code, 'ok');
      return {
        contactId: result.contactId,
        fields: { email: result.fields.email ?? '', phone: result.fields.phone ?? '', name: result.fields.name ?? '' },
        auditEventId: result.auditEventId,
      };
    }),

    resolveRecipients: serverStreaming<vaultV1.ResolveRecipientsRequest, vaultV1.ResolveRecipientsResponse>(
      async (req, send, ctx) => {
        try {
          const principal = ctx.principal;
          // Defence in depth: the table already limits this method to the dispatch identity.
          if (principal.kind !== 'service' || principal.service !== (deps.resolverService ?? 'dispatch')) {
            throw new VaultError('NOT_ALLOWED', 'only the dispatch service resolves addresses');
          }
          for await (const batch of resolveRecipients(deps, {
            tenantId: req.tenantId,
            purposeRef: req.purposeRef,
            contactIds: req.contactIds,
            actor: actorOf(principal),
            principalKey: principalId(principal),
            ...(deps.resolveBatchSize !== undefined ? { batchSize: deps.resolveBatchSize } : {}),
          })) {
            await send({
              recipients: batch.recipients,
              missingContactIds: batch.missingContactIds,
              auditEventId: batch.auditEventId,
            });
            metrics.addressesResolved(req.tenantId, 'ok', batch.recipients.length);
            metrics.addressesResolved(req.tenantId, 'missing', batch.missingContactIds.length);
          }
        } catch (err) {
          throw toAppError(err);
        }
      },
    ),

    eraseContact: handler<vaultV1.EraseContactRequest, vaultV1.Operation>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const purpose = purposeOf(ctx, req.purpose);
      // A retry with the request id gets the first answer (the same operation); erasure is idempotent per contact too.
      return deps.idempotency.run<vaultV1.Operation>(
        { principal: principalId(ctx.principal), method: ctx.method, requestId: requestIdOf(ctx.metadata, req) },
        {
          tenantId: req.tenantId,
          contactId: req.contactId,
          keepSuppressionTombstone: req.keepSuppressionTombstone,
          purpose,
        },
        async () => {
          const started = await startEraseContact(deps, {
            tenantId: req.tenantId,
            contactId: req.contactId,
            actor: actorOf(ctx.principal),
            purpose,
            keepSuppressionTombstone: req.keepSuppressionTombstone,
          });
          return operationToProto(await settleBriefly(started));
        },
      );
    }),

    getOperation: handler<vaultV1.GetOperationRequest, vaultV1.Operation>(async (req, ctx) => {
      const op =
        typeof req.operationId === 'string' && req.operationId !== ''
          ? await deps.operations.get(req.operationId)
          : undefined;
      // Another tenant's operation reads as absent: ids must not confirm what exists elsewhere.
      if (!op || (ctx.principal.kind === 'operator' && ctx.principal.tenant !== op.tenantId)) {
        throw new VaultError('OPERATION_NOT_FOUND', 'no such operation', 'operation_id');
      }
      return operationToProto(op);
    }),

    exportContact: handler<vaultV1.ExportContactRequest, vaultV1.ExportContactResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const purpose = purposeOf(ctx, req.purpose);
      await deps.quotas.reveal.take(principalId(ctx.principal), 1, 'export');
      const result = await exportContact(deps, {
        tenantId: req.tenantId,
        contactId: req.contactId,
        actor: actorOf(ctx.principal),
        purpose,
      });
      return { json: result.json, auditEventId: result.auditEventId };
    }),

    rotateTenantKey: handler<vaultV1.RotateTenantKeyRequest, vaultV1.Operation>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const purpose = purposeOf(ctx, undefined);
      // A retry with the request id gets the first answer: the same operation, never another key version.
      return deps.idempotency.run<vaultV1.Operation>(
        { principal: principalId(ctx.principal), method: ctx.method, requestId: requestIdOf(ctx.metadata, req) },
        { tenantId: req.tenantId, keyKind: req.keyKind, purpose },
        async () => {
          const started = await startRotateTenantKey(deps, {
            tenantId: req.tenantId,
            keyKind: req.keyKind as 'kek' | 'index',
            actor: actorOf(ctx.principal),
            purpose,
          });
          return operationToProto(await settleBriefly(started));
        },
      );
    }),
  } as vaultV1.ContactVaultServer;
}
