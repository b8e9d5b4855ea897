import type { AuditPublisher } from '../ports/audit-publisher';
import { revealContact, type RevealContactInput } from './reveal-contact';
import type { VaultDeps } from './vault-deps';

/** Audit action of an export; subject token `contact_export`. */
export const EXPORT_AUDIT_ACTION = 'contact.export';

/** Version of the export document's shape. */
export const EXPORT_FORMAT = 'sealpost.vault.contact-export/v1';

/**
 * The vault's part of a subject-access export: the contact's fields and metadata as JSON, released only after the
 * `contact.export` audit event was durably acknowledged (same fail-closed path as a reveal). Throws like
 * `revealContact`.
 */
export async function exportContact(
  deps: VaultDeps & { readonly audit: AuditPublisher },
  input: RevealContactInput,
): Promise<{ json: string; auditEventId: string }> {
  const { contact, fields, auditEventId } = await revealContact(deps, input, EXPORT_AUDIT_ACTION);
  const doc = {
    format: EXPORT_FORMAT,
    tenantId: contact.tenantId,
    contactId: contact.contactId,
    fields: {
      ...(fields.email !== undefined ? { email: fields.email } : {}),
      ...(fields.phone !== undefined ? { phone: fields.phone } : {}),
      ...(fields.name !== undefined ? { name: fields.name } : {}),
    },
    metadata: {
      version: contact.version,
      fieldKinds: [...contact.fieldKinds],
      createdAt: contact.createdAt.toISOString(),
      updatedAt: contact.updatedAt.toISOString(),
      lastActivityAt: contact.lastActivityAt.toISOString(),
      encryption: 'AES-256-GCM record under a per-contact data key wrapped by the tenant KEK',
    },
    auditEventId,
    exportedAt: new Date().toISOString(),
  };
  return { json: JSON.stringify(doc, null, 2), auditEventId };
}
