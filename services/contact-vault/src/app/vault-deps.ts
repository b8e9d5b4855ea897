import type { BlindIndex, ContactCipher, KeyHierarchy } from '@sealpost/crypto';
import type { ContactRepository } from '../ports/contact-repository';
import type { ImportRowPreparer } from '../ports/import-row-preparer';
import type { ImportBatchWriter } from '../ports/import-batch-writer';
import type { IndexEntryRepository, IndexKey } from '../ports/index-entry-repository';
import type { KeyInventory } from '../ports/key-inventory';
import type { TenantPolicies } from '../ports/tenant-policies';

/** What the contact use cases work with: repositories, the key hierarchy and the record cipher. */
export interface VaultDeps {
  readonly contacts: ContactRepository;
  readonly indexEntries: IndexEntryRepository;
  readonly keys: KeyHierarchy;
  readonly cipher: ContactCipher;
  readonly policies: TenantPolicies;
  /**
   * Key-store inventory: which index-root versions are retired. Without it only the current index version is
   * consulted (no re-index can be running).
   */
  readonly inventory?: KeyInventory;
  /** Batched writes for bulk import; without it ImportContacts goes row by row. */
  readonly importBatch?: ImportBatchWriter;
  /**
   * Prepares a bulk import's next batch (normalise, index, seal new contacts) beside the current one; without it the
   * import does all of that in line.
   */
  readonly rowPreparer?: ImportRowPreparer;
  readonly now?: () => Date;
  /**
   * An index entry whose contact was never written (its writer crashed between claim and write) is taken over
   * after this long (default 30 s). Must exceed the longest claim-to-write time.
   */
  readonly claimGraceMs?: number;
  /** How long an upsert keeps retrying against concurrent writers before CONCURRENT_UPDATE (default 10 s). */
  readonly retryBudgetMs?: number;
}

export function indexKeyOf(tenantId: string, index: BlindIndex): IndexKey {
  return {
    tenantId,
    fieldKind: index.fieldKind,
    keyVersion: index.keyVersion,
    normVersion: index.normVersion,
    value: index.value,
  };
}

export function sameIndex(a: BlindIndex | IndexKey, b: BlindIndex | IndexKey): boolean {
  return (
    a.fieldKind === b.fieldKind &&
    a.keyVersion === b.keyVersion &&
    a.normVersion === b.normVersion &&
    a.value === b.value
  );
}
