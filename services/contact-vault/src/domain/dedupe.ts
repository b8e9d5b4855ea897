import type { BlindIndex, BlindIndexFieldKind, NormalizationPolicy } from '@sealpost/crypto';

/** Which indexed field identifies a person for de-duplication. */
export type DedupeKey = BlindIndexFieldKind;

/** A tenant's vault rules. */
export interface TenantPolicy {
  /** Upserts with the same value of this field reach the same contact (default 'email'). */
  readonly dedupeKey: DedupeKey;
  readonly normalization: NormalizationPolicy;
}

export const DEFAULT_TENANT_POLICY: TenantPolicy = Object.freeze({
  dedupeKey: 'email',
  normalization: Object.freeze({}),
});

/** What the index entries say about one indexed field of the request. */
export interface FieldOwner {
  readonly fieldKind: BlindIndexFieldKind;
  /** The contact owning this value, or undefined when no contact has it. */
  readonly contactId: string | undefined;
}

export type DedupeDecision =
  | { readonly kind: 'create' }
  | { readonly kind: 'update'; readonly contactId: string }
  | { readonly kind: 'conflict'; readonly field: BlindIndexFieldKind };

/**
 * Decides where an upsert goes, from who owns each of its indexed values (pure):
 * - nobody owns any → create;
 * - values owned by two different contacts → conflict: two existing contacts are never merged automatically;
 * - one owner X: update X, unless the request's dedupe-key value is new while X already has another value of
 *   that field — then the request is another person whose other field is taken by X → conflict on that field.
 * `ownerKinds` gives the field kinds the single owner holds now.
 */
export function decideDedupe(
  policy: Pick<TenantPolicy, 'dedupeKey'>,
  owners: readonly FieldOwner[],
  ownerKinds: (contactId: string) => readonly string[],
): DedupeDecision {
  const owned = owners.filter((o) => o.contactId !== undefined);
  if (owned.length === 0) return { kind: 'create' };
  const distinct = new Set(owned.map((o) => o.contactId));
  if (distinct.size > 1) {
    // Name the field that does not belong to the dedupe-key owner (or the second one) as the conflicting one.
    const keyOwner = owned.find((o) => o.fieldKind === policy.dedupeKey)?.contactId ?? owned[0]?.contactId;
    const other = owned.find((o) => o.contactId !== keyOwner);
    return { kind: 'conflict', field: other?.fieldKind ?? policy.dedupeKey };
  }
  const contactId = owned[0]!.contactId!;
  const keyInRequest = owners.find((o) => o.fieldKind === policy.dedupeKey);
  if (keyInRequest && keyInRequest.contactId === undefined && ownerKinds(contactId).includes(policy.dedupeKey)) {
    const taken = owned[0]!.fieldKind;
    return { kind: 'conflict', field: taken };
  }
  return { kind: 'update', contactId };
}

/**
 * Puts the indexes of the dedupe key's kind first, the others after them, each group in its order (in place; a
 * contact has two or three, and a sort allocated more than the rest of the step).
 */
export function dedupeKeyFirst(indexes: BlindIndex[], dedupeKey: DedupeKey): BlindIndex[] {
  let at = 0;
  for (let i = 0; i < indexes.length; i += 1) {
    const index = indexes[i]!;
    if (index.fieldKind !== dedupeKey) continue;
    indexes.copyWithin(at + 1, at, i);
    indexes[at] = index;
    at += 1;
  }
  return indexes;
}
