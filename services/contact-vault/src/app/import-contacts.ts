import { VaultError, type RawContactFields } from '../domain';
import { upsertContact } from './upsert-contact';
import type { VaultDeps } from './vault-deps';

export interface ImportRow {
  readonly tenantId: string;
  /** The caller's row number, echoed in the result. */
  readonly row: string;
  readonly fields: RawContactFields;
}

export type ImportRowOutcome = 'created' | 'updated' | 'unchanged' | 'rejected';

export interface ImportRowResult {
  readonly row: string;
  readonly result: ImportRowOutcome;
  readonly contactId: string;
  /** When rejected: a stable code (`INVALID_ARGUMENT`, `DEDUPE_CONFLICT`) and the field — never the value. */
  readonly reason: string;
  readonly field: string;
}

/**
 * Imports rows one by one (in order, so duplicates inside one file resolve to one contact) and yields a result per
 * row. Re-running the same rows yields `unchanged` everywhere and writes nothing. A rejected row changes nothing
 * and does not stop the import; infrastructure failures (KMS, storage) do, by throwing.
 */
export async function* importContacts(
  deps: VaultDeps,
  rows: AsyncIterable<ImportRow>,
): AsyncGenerator<ImportRowResult> {
  for await (const row of rows) {
    try {
      const r = await upsertContact(deps, { tenantId: row.tenantId, fields: row.fields });
      const result: ImportRowOutcome = r.created ? 'created' : r.changed ? 'updated' : 'unchanged';
      yield { row: row.row, result, contactId: r.contactId, reason: '', field: '' };
    } catch (err) {
      if (err instanceof VaultError && (err.code === 'INVALID_ARGUMENT' || err.code === 'DEDUPE_CONFLICT')) {
        yield { row: row.row, result: 'rejected', contactId: '', reason: err.code, field: err.field ?? '' };
        continue;
      }
      throw err;
    }
  }
}
