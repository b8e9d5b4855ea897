import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  ContactCipher,
  type BlindIndex,
  type DataKeyStore,
  type NormalizationPolicy,
  type WrappedDataKey,
} from '@sealpost/crypto';
import type { EventEnvelope } from '@sealpost/bus';
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
import type { ContactWriteBatch, ImportBatchWriter, PendingDataKey } from '../ports/import-batch-writer';
import type { NewContactDraft, PrepareKeys, PreparedImportRow } from '../ports/import-row-preparer';
import type { IndexEntry, IndexKey } from '../ports/index-entry-repository';
import { contactUpsertedEvent } from './contact-events';
import { liveIndexKeys } from './index-versions';
import { upsertContact } from './upsert-contact';
import { indexKeyOf, sameIndex, type VaultDeps } from './vault-deps';

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

export interface ImportOptions {
  /** Rows per batch (one transaction per store per batch); default 4096 (`SEALPOST_VAULT_IMPORT_BATCH_ROWS`). */
  readonly batchSize?: number;
  /** How long a partial batch waits for more rows before it is processed anyway (default 5 ms). */
  readonly maxWaitMs?: number;
  /** How long a batch holds the thread before the event loop may turn (default 8 ms; 0: at every row). */
  readonly turnEveryMs?: number;
}

// Measured on 2 cores: 1,024 → 4,096 rows per batch took the import from ~8.5k to ~10k rows/s (fewer commits,
// fewer lookups); past that the gain is small and each batch holds the thread longer.
const DEFAULT_BATCH = 4096;
const DEFAULT_WAIT_MS = 5;
/**
 * How long a batch holds the thread, by default, before it lets the event loop turn. Rows of the next batch are read
 * from the stream only when the loop turns, and only a whole batch goes to the worker: without turns the next batch
 * was read after this one, prepared while this thread waited, and often cut short by the partial-batch timer (a
 * fifth of the import was waiting; batches averaged ~1,300 rows instead of 4,096).
 */
const DEFAULT_TURN_EVERY_MS = 8;

/** Lets the event loop turn once the batch has held the thread for `everyMs`. */
class Turns {
  private last = performance.now();
  constructor(private readonly everyMs: number) {}
  async maybe(): Promise<void> {
    if (performance.now() - this.last < this.everyMs) return;
    await nextTurn();
    this.last = performance.now();
  }
}

/**
 * Imports rows and yields a result per row, in row order. Rows are processed as if one by one (duplicates inside
 * one file resolve to one contact, later rows see earlier ones); re-running the same rows yields `unchanged`
 * everywhere and writes nothing. A rejected row changes nothing and does not stop the import; infrastructure
 * failures (KMS, storage) do, by throwing.
 *
 * With a batch writer (SQLite, MongoDB) rows go in batches: normalise + HMAC per row (on the worker, one batch ahead,
 * where there is one), one store lookup of every value the batch names (and of their contacts and data keys), dedupe
 * row by row against it and the batch so far, one seal per contact (done ahead by the worker for a contact its row
 * created), then one write per store (a transaction on SQLite; claims first on MongoDB). A batch that
 * loses a race with another writer (a claim taken, a version moved) or meets an entry in flight is written nothing
 * and redone row by row.
 */
export async function* importContacts(
  deps: VaultDeps,
  rows: AsyncIterable<ImportRow>,
  options: ImportOptions = {},
): AsyncGenerator<ImportRowResult> {
  const writer = deps.importBatch;
  if (!writer) {
    for await (const row of rows) yield await importOne(deps, row);
    return;
  }
  const source = batches(rows, options.batchSize ?? DEFAULT_BATCH, options.maxWaitMs ?? DEFAULT_WAIT_MS);
  const turnEveryMs = options.turnEveryMs ?? DEFAULT_TURN_EVERY_MS;
  // One batch ahead: the next batch is gathered and prepared (by `deps.rowPreparer`, off this thread) while this one
  // is looked up, deduped and written.
  const prepare = async (): Promise<{ batch: ImportRow[]; ahead: Promise<PreparedAhead> } | undefined> => {
    const next = await source.next();
    // Preparing ahead only speeds things up: if it fails, the batch is prepared in line.
    if (next.done) return undefined;
    return { batch: next.value, ahead: prepareAhead(deps, next.value).catch(() => NOTHING_AHEAD) };
  };
  let next = prepare();
  try {
    for (;;) {
      const current = await next;
      if (current === undefined) return;
      next = prepare();
      // Rejections of the batch ahead surface when it is awaited; until then they must not count as unhandled.
      next.catch(() => undefined);
      const results = await importBatch(deps, writer, current.batch, await current.ahead, turnEveryMs);
      if (results) yield* results;
      else for (const row of current.batch) yield await importOne(deps, row);
    }
  } finally {
    // Not awaited: a read ahead may be waiting for rows a stopped caller will never send; the stop is queued behind it.
    source.return(undefined).catch(() => undefined);
  }
}

/** A batch's rows prepared ahead, where that was done (a row `undefined`, or none at all: prepare in line). */
type PreparedAhead = readonly (PreparedImportRow | undefined)[];

const NOTHING_AHEAD: PreparedAhead = [];

async function prepareAhead(deps: VaultDeps, batch: readonly ImportRow[]): Promise<PreparedAhead> {
  if (!deps.rowPreparer) return NOTHING_AHEAD;
  const policies = new Map<string, NormalizationPolicy | undefined>();
  const policyOf = (tenantId: string): NormalizationPolicy | undefined => {
    if (!policies.has(tenantId)) {
      try {
        assertTenantId(tenantId);
        policies.set(tenantId, deps.policies.of(tenantId).normalization);
      } catch {
        policies.set(tenantId, undefined); // the batch goes row by row, which reports the tenant
      }
    }
    return policies.get(tenantId);
  };
  if (batch.some((row) => policyOf(row.tenantId) === undefined)) return NOTHING_AHEAD;
  const keys =
    policies.size === 1 && deps.rowPreparer.accepting()
      ? await keysAhead(deps, batch[0]!.tenantId, batch.length)
      : undefined;
  return deps.rowPreparer.prepareMany(
    batch.map((row) => ({ fields: row.fields, policy: policyOf(row.tenantId)! })),
    keys,
  );
}

/**
 * Keys for preparing a one-tenant batch ahead, with a KEK use reserved per row (rows that turn out not to create a
 * contact count too: the count errs high); undefined while a re-index runs (rows then take the row-by-row path), or
 * when the cached KEK has too few uses left in its window: then the batch indexes and seals in line. A KMS failure
 * here is met again, and reported, by the batch itself.
 */
async function keysAhead(deps: VaultDeps, tenantId: string, rows: number): Promise<PrepareKeys | undefined> {
  try {
    const indexKeys = await liveIndexKeys(deps, tenantId);
    if (indexKeys.length !== 1) return undefined;
    let kek = deps.keys.reserveCurrentKek(tenantId, rows);
    if (kek === undefined) {
      await deps.keys.currentKek(tenantId); // loads it into the cache window if KMS must be asked
      kek = deps.keys.reserveCurrentKek(tenantId, rows);
    }
    if (kek === undefined) return undefined;
    return { indexKeys: indexKeys[0]!, kek, nowMs: (deps.now ?? (() => new Date()))().getTime() };
  } catch {
    return undefined;
  }
}

async function importOne(deps: VaultDeps, row: ImportRow): Promise<ImportRowResult> {
  try {
    const r = await upsertContact(deps, { tenantId: row.tenantId, fields: row.fields });
    const result: ImportRowOutcome = r.created ? 'created' : r.changed ? 'updated' : 'unchanged';
    return { row: row.row, result, contactId: r.contactId, reason: '', field: '' };
  } catch (err) {
    const rejected = rejection(row, err);
    if (rejected) return rejected;
    throw err;
  }
}

function rejection(row: ImportRow, err: unknown): ImportRowResult | undefined {
  if (err instanceof VaultError && (err.code === 'INVALID_ARGUMENT' || err.code === 'DEDUPE_CONFLICT')) {
    return { row: row.row, result: 'rejected', contactId: '', reason: err.code, field: err.field ?? '' };
  }
  return undefined;
}

/** Groups rows into batches of up to `size`; a partial batch is released once no row arrived for `waitMs`. */
async function* batches<T>(source: AsyncIterable<T>, size: number, waitMs: number): AsyncGenerator<T[]> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  let batch: T[] = [];
  try {
    for (;;) {
      pending ??= it.next();
      let next: IteratorResult<T> | 'timeout';
      if (batch.length === 0) next = await pending;
      else {
        let timer: NodeJS.Timeout | undefined;
        next = await Promise.race([
          pending,
          new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), waitMs))),
        ]);
        clearTimeout(timer);
      }
      if (next === 'timeout') {
        // A caller waiting for results before it sends more rows must not stall on a half-full batch.
        yield batch;
        batch = [];
        continue;
      }
      pending = undefined;
      if (next.done) break;
      batch.push(next.value);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    if (pending === undefined) await it.return?.();
  }
}

/** A contact as the batch has left it so far. */
interface Pending {
  readonly base: StoredContact | undefined;
  fields: ContactFields;
  indexes: BlindIndex[];
  version: number;
  fieldKinds: string[];
  readonly createdAt: Date;
  readonly events: { version: number; created: boolean }[];
  /** Sealed ahead from the row that created it; good while the contact still holds just that row's fields. */
  readonly draft?: NewContactDraft | undefined;
}

/** A row normalised and indexed, with each index's map key built once (it is looked up several times), or why not. */
type PreparedRow =
  | {
      row: ImportRow;
      fields: ContactFields;
      requested: BlindIndex[];
      requestedKeys: string[];
      draft: NewContactDraft | undefined;
    }
  | { row: ImportRow; err: unknown };

const keyString = (k: IndexKey | BlindIndex): string => `${k.fieldKind}|${k.keyVersion}|${k.normVersion}|${k.value}`;

/** Buffers new data keys in memory so a batch stores them in one write; reads fall through to the store. */
class BufferedDataKeys implements DataKeyStore {
  readonly fresh = new Map<string, PendingDataKey>();
  constructor(
    private readonly inner: DataKeyStore,
    private readonly tenantId: string,
    /** Contacts created by this batch: they have no stored key, so the store is not asked. */
    private readonly created: ReadonlySet<string>,
    /** Stored keys read for the whole batch at once, when the writer can (one query instead of one per contact). */
    private readonly stored: ReadonlyMap<string, WrappedDataKey> = new Map(),
  ) {}
  async get(tenantId: string, contactId: string): Promise<WrappedDataKey | undefined> {
    if (tenantId !== this.tenantId) return this.inner.get(tenantId, contactId);
    const fresh = this.fresh.get(contactId)?.key;
    if (fresh || this.created.has(contactId)) return fresh;
    return this.stored.get(contactId) ?? this.inner.get(tenantId, contactId);
  }
  async put(tenantId: string, contactId: string, key: WrappedDataKey): Promise<WrappedDataKey> {
    if (tenantId !== this.tenantId) throw new Error('one batch holds one tenant');
    const existing = await this.get(tenantId, contactId);
    if (existing) return existing;
    this.fresh.set(contactId, { tenantId, contactId, key });
    return key;
  }
  /** Takes a draft's data key as this batch's new key for its contact; returns the draft's record. */
  adopt(contactId: string, draft: NewContactDraft): Uint8Array {
    if (this.fresh.has(contactId)) throw new Error('a data key already exists for a new contact id');
    this.fresh.set(contactId, { tenantId: this.tenantId, contactId, key: draft.dataKey });
    return draft.record;
  }
  async rewrap(): Promise<boolean> {
    throw new Error('not used by import');
  }
  async delete(): Promise<boolean> {
    throw new Error('not used by import');
  }
}

/** One batch; undefined when it must be redone row by row (nothing was written). */
async function importBatch(
  deps: VaultDeps,
  writer: ImportBatchWriter,
  rows: readonly ImportRow[],
  ahead: PreparedAhead,
  turnEveryMs: number,
): Promise<ImportRowResult[] | undefined> {
  const tenantId = rows[0]?.tenantId;
  if (tenantId === undefined) return [];
  // Mixed tenants or a bad tenant id: the row-by-row path reports each row.
  if (rows.some((r) => r.tenantId !== tenantId)) return undefined;
  try {
    assertTenantId(tenantId);
  } catch {
    return undefined;
  }
  const policy = deps.policies.of(tenantId);
  const indexKeys = await liveIndexKeys(deps, tenantId);
  // A re-index is running: an address may still be stored under the rules of its older version, which only the
  // row-by-row path consults (as UpsertContact does). Rare and temporary, so the batch simply goes that way.
  if (indexKeys.length > 1) return undefined;
  const now = (deps.now ?? (() => new Date()))();

  const owners = new Map<string, string | undefined>(); // index key → owning contact (batch view)
  const claimedBy = new Map<string, IndexEntry>(); // claims the batch makes
  const released = new Map<string, { key: IndexKey; contactId: string }>();
  const contacts = new Map<string, Pending>();
  const outcomes: { row: ImportRow; result: ImportRowOutcome; contactId: string; err?: unknown }[] = [];

  // Normalise and index every row first, so the store is asked once for the whole batch, not once per value. Indexes
  // computed ahead count only under the index version this batch uses (a rotation may have come in between).
  const indexVersion = indexKeys[0]!.keyVersion;
  const prepared = rows.map((row, i): PreparedRow => {
    try {
      const pre = ahead[i];
      const fields = pre?.fields ?? normalizeFields(row.fields, policy.normalization);
      const indexes = pre?.indexes?.every((x) => x.keyVersion === indexVersion)
        ? [...pre.indexes]
        : indexesOf(indexKeys, fields);
      const requested = dedupeKeyFirst(indexes, policy.dedupeKey);
      return { row, fields, requested, requestedKeys: requested.map(keyString), draft: pre?.draft };
    } catch (err) {
      return { row, err };
    }
  });
  const asked = new Map<string, IndexKey>();
  for (const p of prepared) {
    if ('requested' in p)
      p.requested.forEach((index, k) => asked.set(p.requestedKeys[k]!, indexKeyOf(tenantId, index)));
  }
  const entries = await deps.indexEntries.findMany([...asked.values()]);
  const stored = new Map(
    (await deps.contacts.getMany(tenantId, [...new Set(entries.map((e) => e.contactId))])).map((c) => [c.contactId, c]),
  );
  for (const key of asked.keys()) owners.set(key, undefined);
  for (const entry of entries) {
    const doc = stored.get(entry.contactId);
    // Claimed but not part of its contact: a writer is in flight or crashed; the row-by-row path handles it.
    if (!doc || !doc.indexes.some((i) => sameIndex(i, entry))) return undefined;
    owners.set(keyString(entry), entry.contactId);
  }
  // One cipher for the batch: it opens the stored contacts with their keys read in one go, and seals with new keys
  // buffered so they are stored together.
  const created = new Set<string>();
  const keys = new BufferedDataKeys(
    writer.dataKeys,
    tenantId,
    created,
    stored.size > 0 ? await writer.readDataKeys?.(tenantId, [...stored.keys()]) : undefined,
  );
  const cipher = new ContactCipher({ keys: deps.keys, dataKeys: keys });
  // Who owns each value in the store: a contact releases a value exactly when the store still holds it as its own,
  // however often the batch moved it in between.
  const storedOwners = new Map<string, string>();
  for (const doc of stored.values()) for (const index of doc.indexes) storedOwners.set(keyString(index), doc.contactId);
  for (const doc of stored.values()) {
    contacts.set(doc.contactId, {
      base: doc,
      fields: fromOpened(await cipher.open(tenantId, doc.contactId, doc.record)),
      indexes: [...doc.indexes],
      version: doc.version,
      fieldKinds: [...doc.fieldKinds],
      createdAt: doc.createdAt,
      events: [],
    });
  }

  // Other calls may run at each turn; a batch that then loses a race writes nothing and goes row by row.
  const turns = new Turns(turnEveryMs);
  for (const p of prepared) {
    await turns.maybe();
    const { row } = p;
    if (!('requested' in p)) {
      outcomes.push({ row, result: 'rejected', contactId: '', err: p.err });
      continue;
    }
    const { fields, requested, requestedKeys } = p;
    const found = requestedKeys.map((key) => owners.get(key));
    const byKind = new Map<string, string | undefined>();
    requested.forEach((i, k) => {
      if (byKind.get(i.fieldKind) === undefined) byKind.set(i.fieldKind, found[k]);
    });
    const decision = decideDedupe(
      policy,
      [...byKind].map(([fieldKind, contactId]) => ({ fieldKind: fieldKind as BlindIndex['fieldKind'], contactId })),
      (id) => contacts.get(id)?.fieldKinds ?? [],
    );
    if (decision.kind === 'conflict') {
      const err = new VaultError(
        'DEDUPE_CONFLICT',
        `${decision.field} belongs to another existing contact; nothing was merged`,
        decision.field,
      );
      outcomes.push({ row, result: 'rejected', contactId: '', err });
      continue;
    }
    let contactId: string;
    let next: BlindIndex[];
    let nextKeys: string[];
    let previous: BlindIndex[];
    let created = false;
    if (decision.kind === 'create') {
      contactId = p.draft?.contactId ?? newContactId(now.getTime());
      created = true;
      next = requested;
      nextKeys = requestedKeys;
      previous = [];
      contacts.set(contactId, {
        base: undefined,
        fields,
        indexes: requested,
        version: 1,
        fieldKinds: fieldKindsOf(fields),
        createdAt: now,
        events: [{ version: 1, created: true }],
        draft: p.draft,
      });
    } else {
      contactId = decision.contactId;
      const c = contacts.get(contactId)!;
      const merged = mergeFields(c.fields, fields);
      if (sameFields(c.fields, merged)) {
        outcomes.push({ row, result: 'unchanged', contactId });
        continue;
      }
      previous = c.indexes;
      next = indexesOf(indexKeys, merged);
      nextKeys = next.map(keyString);
      c.fields = merged;
      c.indexes = next;
      c.version += 1;
      c.fieldKinds = fieldKindsOf(merged);
      c.events.push({ version: c.version, created: false });
    }
    next.forEach((index, n) => {
      if (previous.some((o) => sameIndex(o, index))) return;
      const k = nextKeys[n]!;
      owners.set(k, contactId);
      // Taken back by the contact that released it: its stored entry stays. Taken by another: that entry is still
      // released first (SQLite deletes before it claims; MongoDB, which claims first, then loses and goes row by row).
      if (storedOwners.get(k) === contactId) released.delete(k);
      claimedBy.set(k, {
        tenantId,
        fieldKind: index.fieldKind,
        keyVersion: index.keyVersion,
        normVersion: index.normVersion,
        value: index.value,
        contactId,
        claimedAt: now,
      });
    });
    for (const index of previous.filter((o) => !next.some((n) => sameIndex(o, n)))) {
      const k = keyString(index);
      owners.set(k, undefined);
      // Claimed earlier in this batch: simply not claimed. Held in the store: released.
      claimedBy.delete(k);
      if (storedOwners.get(k) === contactId) released.set(k, { key: indexKeyOf(tenantId, index), contactId });
    }
    outcomes.push({ row, result: created ? 'created' : 'updated', contactId });
  }

  // One seal per written contact, over its final fields; new data keys are stored together first. A contact its row
  // created keeps the worker's seal if that was made under the KEK version current when the contact's turn comes
  // (asked per contact: a rotation may land at any turn, and a seal in line would then take the new version).
  for (const [id, c] of contacts) if (!c.base) created.add(id);
  const batch: { -readonly [K in keyof ContactWriteBatch]: ContactWriteBatch[K][number][] } = {
    releases: [...released.values()],
    claims: [...claimedBy.values()],
    creates: [],
    updates: [],
  };
  for (const [contactId, c] of contacts) {
    await turns.maybe();
    if (c.events.length === 0) continue;
    const contact: StoredContact = {
      tenantId,
      contactId,
      version: c.version,
      record:
        c.draft && c.version === 1 && c.draft.dataKey.kekVersion === deps.keys.currentKekVersion(tenantId)
          ? keys.adopt(contactId, c.draft)
          : await cipher.seal(tenantId, contactId, toSealable(c.fields), { firstWrite: !c.base }),
      fieldKinds: c.fieldKinds,
      indexes: c.indexes,
      createdAt: c.createdAt,
      updatedAt: now,
      lastActivityAt: now,
    };
    // Every step the rows made is an event with its own aggregate version, as row-by-row upserts would emit.
    const events: EventEnvelope[] = c.events.map((e) =>
      contactUpsertedEvent({ ...contact, version: e.version }, e.created),
    );
    if (c.base) batch.updates.push({ contact, expectedVersion: c.base.version, events });
    else batch.creates.push({ contact, events });
  }
  const fresh = [...keys.fresh.values()];
  await writer.putDataKeys(fresh);
  // A write that throws may have stored part of the batch, or may still (MongoDB writes a batch in several steps, and
  // a dropped connection does not say how far the server got): the keys stay, or a contact that landed could never be
  // opened. A key whose contact never lands decrypts nothing. Only a write that reports nothing written drops them.
  if (!(await writer.writeContacts(batch))) {
    for (const k of fresh) await deps.cipher.shred(tenantId, k.contactId).catch(() => undefined);
    return undefined;
  }
  return outcomes.map((o) => {
    if (o.result === 'rejected') {
      const r = rejection(o.row, o.err);
      if (!r) throw o.err;
      return r;
    }
    return { row: o.row.row, result: o.result, contactId: o.contactId, reason: '', field: '' };
  });
}
