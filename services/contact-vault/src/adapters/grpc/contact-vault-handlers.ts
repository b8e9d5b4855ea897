/**
 * gRPC handlers of `sealpost.vault.v1.ContactVault`. Every object
 * access checks the tenant against the principal (the interceptor checks request messages too); every error goes
 * through `toAppError`. Nothing here logs or returns a plaintext value.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { assertTenantAccess, principalId, type Principal } from '@sealpost/access';
import { AppError, requestIdOf, serverStreaming, unary, type CallContext, type Idempotency } from '@sealpost/server';
import type { vaultV1 } from '@sealpost/proto';
import { startEraseContact } from '../../app/erase-contact';
import { exportContact } from '../../app/export-contact';
import { findContacts } from '../../app/find-contacts';
import { resolveRecipients } from '../../app/resolve-recipients';
import { revealContact, type StatedPurpose } from '../../app/reveal-contact';
import { startRotateTenantKey } from '../../app/rotate-tenant-key';
import { VaultError, type VaultQuotas } from '../../domain';
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
import { bidiStreaming } from './bidi-streaming';
import { toAppError } from './error-mapping';
import { VaultMetrics, outcomeOf } from './vault-metrics';

export interface ContactVaultHandlerDeps extends VaultDeps {
  readonly audit: AuditPublisher;
  readonly idempotency: Idempotency;
  readonly quotas: VaultQuotas;
  readonly erasures: ErasureRepository;
  readonly operations: OperationRepository;
  readonly inventory: KeyInventory;
  readonly signer: ReceiptSigner;
  /** Contacts per ResolveRecipients batch (one audit event each); default 100. */
  readonly resolveBatchSize?: number;
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

/** Implementation of the ContactVault service over the vault's use cases. */
export function createContactVaultHandlers(deps: ContactVaultHandlerDeps): vaultV1.ContactVaultServer {
  // Idempotency compares requests by fingerprint. The in-memory store must not hold an unkeyed hash of the
  // fields (a dictionary attack reverses it), so the fields are reduced to an HMAC under a per-process key.
  const fingerprintKey = randomBytes(32);
  const metrics = deps.metrics ?? new VaultMetrics();
  const keyedFields = (fields: vaultV1.ContactFields | undefined): string =>
    createHmac('sha256', fingerprintKey)
      .update(JSON.stringify(fieldsOf(fields)))
      .digest('base64url');

  return {
    upsertContact: handler<vaultV1.UpsertContactRequest, vaultV1.UpsertContactResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const requestId = requestIdOf(ctx.metadata, req);
      const result = await deps.idempotency
        .run<UpsertContactResult>(
          { principal: principalId(ctx.principal), method: ctx.method, requestId },
          { tenantId: req.tenantId, fields: keyedFields(req.fields) },
          () => upsertContact(deps, { tenantId: req.tenantId, fields: fieldsOf(req.fields) }),
        )
        .catch((err: unknown) => {
          metrics.contactWritten(req.tenantId, outcomeOf(toAppError(err)));
          throw err;
        });
      metrics.contactWritten(req.tenantId, result.created ? 'created' : result.changed ? 'updated' : 'unchanged');
      return { contactId: result.contactId, created: result.created, version: String(result.version) };
    }),

    importContacts: bidiStreaming<vaultV1.ImportContactsRequest, vaultV1.ImportContactsResponse>(
      async (requests, send, ctx) => {
        const principal = ctx.access.principal;
        const tenantOfRow = new Map<ImportRow['row'], string>();
        async function* rows(): AsyncGenerator<ImportRow> {
          for await (const req of requests) {
            // Every row is checked: one stream cannot mix in another tenant's rows.
            assertTenantAccess(principal, req.tenantId);
            tenantOfRow.set(req.row, req.tenantId);
            yield { tenantId: req.tenantId, row: req.row, fields: fieldsOf(req.fields) };
          }
        }
        for await (const result of importContacts(deps, rows())) {
          metrics.contactWritten(tenantOfRow.get(result.row) ?? 'unknown', result.result);
          tenantOfRow.delete(result.row);
          await send({
            row: result.row,
            result: result.result,
            contactId: result.contactId,
            reason: result.reason,
            field: result.field,
          });
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
      deps.quotas.find.take(principalId(ctx.principal), 1, 'find');
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
        deps.quotas.reveal.take(principalId(ctx.principal), 1, 'reveal');
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
      const started = await startEraseContact(deps, {
        tenantId: req.tenantId,
        contactId: req.contactId,
        actor: actorOf(ctx.principal),
        purpose,
        keepSuppressionTombstone: req.keepSuppressionTombstone,
      });
      return operationToProto(await settleBriefly(started));
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
      deps.quotas.reveal.take(principalId(ctx.principal), 1, 'export');
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
      const started = await startRotateTenantKey(deps, {
        tenantId: req.tenantId,
        keyKind: req.keyKind as 'kek' | 'index',
        actor: actorOf(ctx.principal),
        purpose,
      });
      return operationToProto(await settleBriefly(started));
    }),
  } as vaultV1.ContactVaultServer;
}
