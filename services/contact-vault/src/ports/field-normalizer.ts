import type { NormalizationPolicy } from '@sealpost/crypto';
import type { ContactFields, RawContactFields } from '../domain';

/** One row to normalise under its tenant's rules. */
export interface NormalizeRequest {
  readonly fields: RawContactFields;
  readonly policy: NormalizationPolicy;
}

/**
 * Normalises many rows off the calling thread (a bulk import's phone parsing is a seventh of its CPU). An accelerator
 * only: `undefined` for a row means "not done here" — the row was invalid, or the helper is unavailable — and the
 * caller normalises that row itself with `normalizeFields`, which gives the exact error. So results and errors are
 * the same with or without it.
 */
export interface FieldNormalizer {
  normalizeMany(requests: readonly NormalizeRequest[]): Promise<readonly (ContactFields | undefined)[]>;
  close(): Promise<void>;
}
