import { VaultError, assertContactId, assertTenantId } from '../domain';
import { maskedViewOf, type MaskedContactView } from './masked-contact';
import type { VaultDeps } from './vault-deps';

/** The masked view of one contact. Throws VaultError INVALID_ARGUMENT, CONTACT_NOT_FOUND. */
export async function getContact(
  deps: VaultDeps,
  input: { tenantId: string; contactId: string },
): Promise<MaskedContactView> {
  assertTenantId(input.tenantId);
  assertContactId(input.contactId);
  const contact = await deps.contacts.get(input.tenantId, input.contactId);
  if (!contact) throw new VaultError('CONTACT_NOT_FOUND', 'no contact with this id in this tenant', 'contact_id');
  return maskedViewOf(deps, contact);
}
