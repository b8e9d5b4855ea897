import type { BlindIndex, BlindIndexKeys, NormalizationPolicy, TenantKek, WrappedDataKey } from '@sealpost/crypto';
import type { ContactFields, RawContactFields } from '../domain';

/** One row to prepare under its tenant's rules. */
export interface PrepareRequest {
  readonly fields: RawContactFields;
  readonly policy: NormalizationPolicy;
}

/**
 * Keys for a batch of one tenant, when the caller could take them: rows are then also blind-indexed and sealed as if
 * each created a contact. `kek` comes with a use reserved for every row (`KeyHierarchy.reserveCurrentKek`).
 */
export interface PrepareKeys {
  /** The tenant's only live index version (none is handed over while a re-index runs). */
  readonly indexKeys: BlindIndexKeys;
  readonly kek: TenantKek;
  /** Clock for the contact ids minted for the drafts (their time part is then up to one batch early). */
  readonly nowMs: number;
}

/** A row sealed ahead as a new contact under a freshly minted id; used only if the row does create a contact. */
export interface NewContactDraft {
  readonly contactId: string;
  readonly record: Uint8Array;
  readonly dataKey: WrappedDataKey;
}

/** A row prepared ahead: always its normalised fields; its indexes and a draft when keys were given. */
export interface PreparedImportRow {
  readonly fields: ContactFields;
  readonly indexes?: readonly BlindIndex[];
  readonly draft?: NewContactDraft;
}

/**
 * Prepares a bulk import's rows off the calling thread, one batch ahead: normalisation (phone parsing is a seventh of
 * an import's CPU), and with keys the blind indexes and the seal of a new contact (together a fifth). An accelerator
 * only: `undefined` for a row means "not done here" — the row was invalid, or the helper is unavailable — and the
 * caller prepares that row itself with the domain's functions, which give the exact error. So results and errors are
 * the same with or without it.
 */
export interface ImportRowPreparer {
  /** Whether a batch handed over now would be prepared (keys are taken for it only then). */
  accepting(): boolean;
  prepareMany(
    requests: readonly PrepareRequest[],
    keys?: PrepareKeys,
  ): Promise<readonly (PreparedImportRow | undefined)[]>;
  close(): Promise<void>;
}
