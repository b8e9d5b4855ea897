/**
 * gRPC handlers of `sealpost.vault.v1.ContactVault` (this task: upsert, import, get, list, find). Every object
 * access checks the tenant against the principal (the interceptor checks request messages too); every error goes
 * through `toAppError`. Nothing here logs or returns a plaintext value.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { assertTenantAccess, principalId, type Principal } from '@sealpost/access';
import { AppError, requestIdOf, serverStreaming, unary, type CallContext, type Idempotency } from '@sealpost/server';
import type { vaultV1 } from '@sealpost/proto';
import { findContacts } from '../../app/find-contacts';
import { getContact } from '../../app/get-contact';
import { importContacts, type ImportRow } from '../../app/import-contacts';
import { listContacts } from '../../app/list-contacts';
import type { MaskedContactView } from '../../app/masked-contact';
import { upsertContact, type UpsertContactResult } from '../../app/upsert-contact';
import type { VaultDeps } from '../../app/vault-deps';
import type { AuditPublisher, VaultAuditEvent } from '../../ports/audit-publisher';
import { bidiStreaming } from './bidi-streaming';
import { toAppError } from './error-mapping';

export interface ContactVaultHandlerDeps extends VaultDeps {
  readonly audit: AuditPublisher;
  readonly idempotency: Idempotency;
}

const notYet = (method: string) =>
  unary<unknown, never>(async () => {
    throw new AppError('UNIMPLEMENTED', 'NOT_IMPLEMENTED', `${method} is not implemented yet`);
  });

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
  const keyedFields = (fields: vaultV1.ContactFields | undefined): string =>
    createHmac('sha256', fingerprintKey)
      .update(JSON.stringify(fieldsOf(fields)))
      .digest('base64url');

  return {
    upsertContact: handler<vaultV1.UpsertContactRequest, vaultV1.UpsertContactResponse>(async (req, ctx) => {
      assertTenantAccess(ctx.principal, req.tenantId);
      const requestId = requestIdOf(ctx.metadata, req);
      const result = await deps.idempotency.run<UpsertContactResult>(
        { principal: principalId(ctx.principal), method: ctx.method, requestId },
        { tenantId: req.tenantId, fields: keyedFields(req.fields) },
        () => upsertContact(deps, { tenantId: req.tenantId, fields: fieldsOf(req.fields) }),
      );
      return { contactId: result.contactId, created: result.created, version: String(result.version) };
    }),

    importContacts: bidiStreaming<vaultV1.ImportContactsRequest, vaultV1.ImportContactsResponse>(
      async (requests, send, ctx) => {
        const principal = ctx.access.principal;
        async function* rows(): AsyncGenerator<ImportRow> {
          for await (const req of requests) {
            // Every row is checked: one stream cannot mix in another tenant's rows.
            assertTenantAccess(principal, req.tenantId);
            yield { tenantId: req.tenantId, row: req.row, fields: fieldsOf(req.fields) };
          }
        }
        for await (const result of importContacts(deps, rows())) {
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
      const result = await findContacts(deps, {
        tenantId: req.tenantId,
        by: { field: req.by.$case, value: req.by.value },
        actor: actorOf(ctx.principal),
      });
      return { contacts: result.contacts.map(toProto) };
    }),

    // The rest of the service arrives with the next task (reveal, resolve, erase, export, rotation).
    revealContact: notYet('RevealContact'),
    resolveRecipients: serverStreaming<vaultV1.ResolveRecipientsRequest, vaultV1.ResolveRecipientsResponse>(
      async () => {
        throw new AppError('UNIMPLEMENTED', 'NOT_IMPLEMENTED', 'ResolveRecipients is not implemented yet');
      },
    ),
    eraseContact: notYet('EraseContact'),
    getOperation: notYet('GetOperation'),
    exportContact: notYet('ExportContact'),
    rotateTenantKey: notYet('RotateTenantKey'),
  } as vaultV1.ContactVaultServer;
}
