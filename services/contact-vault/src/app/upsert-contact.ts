import type { BlindIndex, BlindIndexKeys } from '@sealpost/crypto';
import {
  VaultError,
  assertTenantId,
  decideDedupe,
  dedupeKeyFirst,
  fieldKindsOf,
  fromOpened,
  indexesOf,
  mergeFields,
  newContactId,
  normalizeFields,
  sameFields,
  toSealable,
  type ContactFields,
  type RawContactFields,
} from '../domain';
import type { StoredContact } from '../ports/contact-repository';
import type { IndexEntry } from '../ports/index-entry-repository';
import { contactUpsertedEvent } from './contact-events';
import { liveIndexKeys, previousRulesEmailIndexes } from './index-versions';
import { indexKeyOf, sameIndex, type VaultDeps } from './vault-deps';

export interface UpsertContactInput {
  readonly tenantId: string;
  readonly fields: RawContactFields;
}

export interface UpsertContactResult {
  readonly contactId: string;
  readonly created: boolean;
  /** False when the stored contact already held exactly these (normalised) fields: nothing was written. */
  readonly changed: boolean;
  readonly version: number;
}

const DEFAULT_CLAIM_GRACE_MS = 30_000;
const DEFAULT_RETRY_BUDGET_MS = 10_000;

/**
 * Creates or updates a contact, de-duplicated through its blind-index entries:
 * normalise → blind indexes → claim/look up index entries → decide (create, update, conflict) → seal all fields in
 * one GCM call → store with a pending `vault.contact.upserted` event. Fields left out keep their stored values.
 * Throws VaultError INVALID_ARGUMENT (field named, value never echoed), DEDUPE_CONFLICT (nothing merged, nothing
 * written), CONCURRENT_UPDATE; KMS errors from @sealpost/crypto pass through (fail closed).
 */
export async function upsertContact(deps: VaultDeps, input: UpsertContactInput): Promise<UpsertContactResult> {
  assertTenantId(input.tenantId);
  const tenantId = input.tenantId;
  const policy = deps.policies.of(tenantId);
  const fields = normalizeFields(input.fields, policy.normalization);
  // During a re-index every live index version is written and consulted, so dedupe sees contacts not yet moved.
  const indexKeys = await liveIndexKeys(deps, tenantId);
  // The dedupe key is claimed first, so racing creators of one person collide on it before anything else.
  const requested = dedupeKeyFirst(indexesOf(indexKeys, fields), policy.dedupeKey);
  // Looked up, never claimed: a contact the re-index has not reached yet may hold this email under the old rules.
  const consulted = [
    ...requested,
    ...previousRulesEmailIndexes(indexKeys.slice(1), input.fields.email, fields.email, policy.normalization),
  ];
  const now = deps.now ?? (() => new Date());
  const grace = deps.claimGraceMs ?? DEFAULT_CLAIM_GRACE_MS;
  const giveUpAt = Date.now() + (deps.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS);

  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) {
      if (Date.now() > giveUpAt) {
        throw new VaultError('CONCURRENT_UPDATE', 'the contact kept changing during the upsert; retry');
      }
      await sleep(Math.min(5 * attempt, 50) + Math.random() * 5);
    }
    const owners = await Promise.all(consulted.map((i) => deps.indexEntries.find(indexKeyOf(tenantId, i))));
    const docs = new Map<string, StoredContact>();
    let unsettled = false;
    for (const entry of owners) {
      if (!entry || docs.has(entry.contactId)) continue;
      const doc = await deps.contacts.get(tenantId, entry.contactId);
      if (doc && doc.indexes.some((i) => sameIndex(i, entry))) {
        docs.set(entry.contactId, doc);
        continue;
      }
      // Claimed but not (yet) part of its contact: a writer is in flight — or crashed, once the grace is over.
      unsettled = true;
      if (now().getTime() - entry.claimedAt.getTime() > grace) {
        await deps.indexEntries.release(indexKeyOf(tenantId, entry), entry.contactId);
      }
    }
    if (unsettled) continue;

    // One owner row per field kind: the owner under any live index version (they agree once settled).
    const byKind = new Map<string, string | undefined>();
    consulted.forEach((i, k) => {
      if (byKind.get(i.fieldKind) === undefined) byKind.set(i.fieldKind, owners[k]?.contactId);
    });
    const decision = decideDedupe(
      policy,
      [...byKind].map(([fieldKind, contactId]) => ({ fieldKind: fieldKind as BlindIndex['fieldKind'], contactId })),
      (id) => docs.get(id)?.fieldKinds ?? [],
    );
    if (decision.kind === 'conflict') {
      throw new VaultError(
        'DEDUPE_CONFLICT',
        `${decision.field} belongs to another existing contact; nothing was merged`,
        decision.field,
      );
    }
    const result =
      decision.kind === 'create'
        ? await tryCreate(deps, tenantId, fields, requested, now())
        : await tryUpdate(deps, docs.get(decision.contactId)!, fields, indexKeys, now());
    if (result) return result;
  }
}

/** Claims every index value for a new id, then writes the contact. Undefined when a claim was lost (retry). */
async function tryCreate(
  deps: VaultDeps,
  tenantId: string,
  fields: ContactFields,
  indexes: readonly BlindIndex[],
  at: Date,
): Promise<UpsertContactResult | undefined> {
  const contactId = newContactId(at.getTime());
  const claimed = await claimAll(deps, tenantId, contactId, indexes, at);
  if (!claimed) return undefined;
  try {
    const record = await deps.cipher.seal(tenantId, contactId, toSealable(fields), { firstWrite: true });
    const contact: StoredContact = {
      tenantId,
      contactId,
      version: 1,
      record,
      fieldKinds: fieldKindsOf(fields),
      indexes,
      createdAt: at,
      updatedAt: at,
      lastActivityAt: at,
    };
    await deps.contacts.create(contact, contactUpsertedEvent(contact, true));
  } catch (err) {
    // An ambiguous failure may have written the contact after all: clean up only what provably is not in use.
    const written = await deps.contacts.get(tenantId, contactId).catch(() => undefined);
    if (!written) {
      await releaseAll(deps, tenantId, contactId, indexes);
      await deps.cipher.shred(tenantId, contactId).catch(() => undefined);
    }
    throw err;
  }
  return { contactId, created: true, changed: true, version: 1 };
}

/** Merges into `doc`; unchanged fields write nothing. Undefined when a claim or the version check was lost. */
async function tryUpdate(
  deps: VaultDeps,
  doc: StoredContact,
  incoming: ContactFields,
  indexKeys: readonly BlindIndexKeys[],
  at: Date,
): Promise<UpsertContactResult | undefined> {
  const { tenantId, contactId } = doc;
  const stored = fromOpened(await deps.cipher.open(tenantId, contactId, doc.record));
  const merged = mergeFields(stored, incoming);
  if (sameFields(stored, merged)) return { contactId, created: false, changed: false, version: doc.version };

  const indexes = indexesOf(indexKeys, merged);
  const fresh = indexes.filter((n) => !doc.indexes.some((o) => sameIndex(o, n)));
  const stale = doc.indexes.filter((o) => !indexes.some((n) => sameIndex(o, n)));
  if (!(await claimAll(deps, tenantId, contactId, fresh, at))) return undefined;
  let written = false;
  try {
    const next: StoredContact = {
      ...doc,
      version: doc.version + 1,
      record: await deps.cipher.seal(tenantId, contactId, toSealable(merged)),
      fieldKinds: fieldKindsOf(merged),
      indexes,
      updatedAt: at,
      lastActivityAt: at,
    };
    written = await deps.contacts.update(next, doc.version, contactUpsertedEvent(next, false));
  } finally {
    if (!written) await releaseAll(deps, tenantId, contactId, fresh);
  }
  if (!written) return undefined;
  // Values the contact no longer has become free; a crash here leaves entries the lookup treats as stale.
  await releaseAll(deps, tenantId, contactId, stale);
  return { contactId, created: false, changed: true, version: doc.version + 1 };
}

async function claimAll(
  deps: VaultDeps,
  tenantId: string,
  contactId: string,
  indexes: readonly BlindIndex[],
  at: Date,
): Promise<boolean> {
  const claimed: BlindIndex[] = [];
  for (const index of indexes) {
    const entry: IndexEntry = { ...indexKeyOf(tenantId, index), contactId, claimedAt: at };
    const result = await deps.indexEntries.claim(entry);
    if (!result.claimed) {
      await releaseAll(deps, tenantId, contactId, claimed);
      return false;
    }
    claimed.push(index);
  }
  return true;
}

async function releaseAll(
  deps: VaultDeps,
  tenantId: string,
  contactId: string,
  indexes: readonly BlindIndex[],
): Promise<void> {
  for (const index of indexes) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
