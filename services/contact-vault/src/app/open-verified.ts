import { KeyNotFoundError, blindIndex, type BlindIndexFieldKind } from '@sealpost/crypto';
import { VaultError, fromOpened, type ContactFields } from '../domain';
import type { StoredContact } from '../ports/contact-repository';
import { indexKeyOf, type VaultDeps } from './vault-deps';

/**
 * Decrypts a contact for a plaintext read and proves the record belongs where it sits: every stored blind index is
 * recomputed from the decrypted value, every indexed field has an index, and each index entry points back at this
 * contact. A record moved between contacts together with its indexes fails here (RECORD_SWAPPED), before any
 * plaintext leaves. Throws VaultError CONTACT_NOT_FOUND when the data key is gone (erased), RECORD_SWAPPED;
 * DecryptionError passes through (tampered or moved ciphertext).
 */
export async function openVerified(
  deps: Pick<VaultDeps, 'cipher' | 'keys' | 'indexEntries'>,
  contact: StoredContact,
): Promise<ContactFields> {
  let fields: ContactFields;
  try {
    fields = fromOpened(await deps.cipher.open(contact.tenantId, contact.contactId, contact.record));
  } catch (err) {
    if (err instanceof KeyNotFoundError) {
      throw new VaultError('CONTACT_NOT_FOUND', 'no readable contact with this id in this tenant', 'contact_id', {
        cause: err,
      });
    }
    throw err;
  }
  const swapped = (): VaultError =>
    new VaultError('RECORD_SWAPPED', "the contact's record does not match its blind indexes; refused", 'contact_id');
  for (const kind of ['email', 'phone'] as BlindIndexFieldKind[]) {
    const value = fields[kind];
    const stored = contact.indexes.filter((i) => i.fieldKind === kind);
    if (value === undefined) {
      if (stored.length > 0) throw swapped();
      continue;
    }
    if (stored.length === 0) throw swapped();
    for (const index of stored) {
      const keys = await deps.keys.indexKeys(contact.tenantId, index.keyVersion);
      const recomputed = blindIndex(keys, kind, value, index.normVersion);
      if (recomputed.value !== index.value) throw swapped();
      const entry = await deps.indexEntries.find(indexKeyOf(contact.tenantId, index));
      if (entry && entry.contactId !== contact.contactId) throw swapped();
    }
  }
  return fields;
}
