import { fromOpened, maskFields, type MaskedFields } from '../domain';
import type { StoredContact } from '../ports/contact-repository';
import type { VaultDeps } from './vault-deps';

/** What masked reads return: ids, masked fields, version and times. */
export interface MaskedContactView {
  readonly tenantId: string;
  readonly contactId: string;
  readonly masked: MaskedFields;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Decrypts inside the vault only to mask; the plaintext never leaves this function. */
export async function maskedViewOf(
  deps: Pick<VaultDeps, 'cipher'>,
  contact: StoredContact,
): Promise<MaskedContactView> {
  const fields = fromOpened(await deps.cipher.open(contact.tenantId, contact.contactId, contact.record));
  return {
    tenantId: contact.tenantId,
    contactId: contact.contactId,
    masked: maskFields(fields),
    version: contact.version,
    createdAt: contact.createdAt,
    updatedAt: contact.updatedAt,
  };
}
