import { ContactCipher, type BlindIndex, type DataKeyStore, type WrappedDataKey } from '@sealpost/crypto';
import type { EventEnvelope } from '@sealpost/bus';
import {
  VaultError,
  assertTenantId,
  decideDedupe,
  fieldKindsOf,
  fromOpened,
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
import type { IndexEntry, IndexKey } from '../ports/index-entry-repository';
import { contactUpsertedEvent } from './contact-events';
import { liveIndexKeys } from './index-versions';
import { indexesOf, upsertContact } from './upsert-contact';
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
  /** Rows per batch (one transaction per store per batch); default 1024. */
  readonly batchSize?: number;
  /** How long a partial batch waits for more rows before it is processed anyway (default 5 ms). */
  readonly maxWaitMs?: number;
}

const DEFAULT_BATCH = 1024;
const DEFAULT_WAIT_MS = 5;

/**
 * Imports rows and yields a result per row, in row order. Rows are processed as if one by one (duplicates inside
 * one file resolve to one contact, later rows see earlier ones); re-running the same rows yields `unchanged`
 * everywhere and writes nothing. A rejected row changes nothing and does not stop the import; infrastructure
 * failures (KMS, storage) do, by throwing.
 *
 * With a batch writer (SQLite) rows go in batches: normalise + HMAC per row, dedupe against the store and the
 * batch so far, one seal per contact, then one transaction per store. A batch that loses a race with another
 * writer (a claim taken, a version moved) or meets an entry in flight is written nothing and redone row by row.
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
  for await (const batch of batches(rows, options.batchSize ?? DEFAULT_BATCH, options.maxWaitMs ?? DEFAULT_WAIT_MS)) {
    const results = await importBatch(deps, writer, batch);
    if (results) yield* results;
    else for (const row of batch) yield await importOne(deps, row);
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
}

const keyString = (k: IndexKey | BlindIndex): string => `${k.fieldKind}|${k.keyVersion}|${k.normVersion}|${k.value}`;

/** Buffers new data keys in memory so a batch stores them in one write; reads fall through to the store. */
class BufferedDataKeys implements DataKeyStore {
  readonly fresh = new Map<string, PendingDataKey>();
  constructor(
    private readonly inner: DataKeyStore,
    private readonly tenantId: string,
    /** Contacts created by this batch: they have no stored key, so the store is not asked. */
    private readonly created: ReadonlySet<string>,
  ) {}
  async get(tenantId: string, contactId: string): Promise<WrappedDataKey | undefined> {
    const fresh = this.fresh.get(contactId)?.key;
    if (fresh || (tenantId === this.tenantId && this.created.has(contactId))) return fresh;
    return this.inner.get(tenantId, contactId);
  }
  async put(tenantId: string, contactId: string, key: WrappedDataKey): Promise<WrappedDataKey> {
    if (tenantId !== this.tenantId) throw new Error('one batch holds one tenant');
    const existing = await this.get(tenantId, contactId);
    if (existing) return existing;
    this.fresh.set(contactId, { tenantId, contactId, key });
    return key;
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
  const now = (deps.now ?? (() => new Date()))();

  const owners = new Map<string, string | undefined>(); // index key → owning contact (batch view)
  const claimedBy = new Map<string, IndexEntry>(); // claims the batch makes
  const released = new Map<string, { key: IndexKey; contactId: string }>();
  const contacts = new Map<string, Pending>();
  const outcomes: { row: ImportRow; result: ImportRowOutcome; contactId: string; err?: unknown }[] = [];

  const ownerOf = async (index: BlindIndex): Promise<string | undefined | 'unsettled'> => {
    const k = keyString(index);
    if (owners.has(k)) return owners.get(k);
    const entry = await deps.indexEntries.find(indexKeyOf(tenantId, index));
    if (!entry) {
      owners.set(k, undefined);
      return undefined;
    }
    const known = contacts.get(entry.contactId);
    if (known) {
      // Loaded already (through another value): the entry must be part of the contact as stored.
      if (!known.base?.indexes.some((i) => sameIndex(i, entry))) return 'unsettled';
    } else {
      const doc = await deps.contacts.get(tenantId, entry.contactId);
      // Claimed but not part of its contact: a writer is in flight or crashed; the row-by-row path handles it.
      if (!doc || !doc.indexes.some((i) => sameIndex(i, entry))) return 'unsettled';
      const opened = fromOpened(await deps.cipher.open(tenantId, doc.contactId, doc.record));
      contacts.set(doc.contactId, {
        base: doc,
        fields: opened,
        indexes: [...doc.indexes],
        version: doc.version,
        fieldKinds: [...doc.fieldKinds],
        createdAt: doc.createdAt,
        events: [],
      });
    }
    owners.set(k, entry.contactId);
    return entry.contactId;
  };

  for (const row of rows) {
    let fields: ContactFields;
    try {
      fields = normalizeFields(row.fields, policy.normalization);
    } catch (err) {
      outcomes.push({ row, result: 'rejected', contactId: '', err });
      continue;
    }
    const requested = indexesOf(indexKeys, fields).sort(
      (a, b) => Number(b.fieldKind === policy.dedupeKey) - Number(a.fieldKind === policy.dedupeKey),
    );
    const found: (string | undefined)[] = [];
    for (const index of requested) {
      const owner = await ownerOf(index);
      if (owner === 'unsettled') return undefined;
      found.push(owner);
    }
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
    let previous: BlindIndex[];
    let created = false;
    if (decision.kind === 'create') {
      contactId = newContactId(now.getTime());
      created = true;
      next = requested;
      previous = [];
      contacts.set(contactId, {
        base: undefined,
        fields,
        indexes: requested,
        version: 1,
        fieldKinds: fieldKindsOf(fields),
        createdAt: now,
        events: [{ version: 1, created: true }],
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
      c.fields = merged;
      c.indexes = next;
      c.version += 1;
      c.fieldKinds = fieldKindsOf(merged);
      c.events.push({ version: c.version, created: false });
    }
    for (const index of next.filter((n) => !previous.some((o) => sameIndex(o, n)))) {
      const k = keyString(index);
      owners.set(k, contactId);
      released.delete(k);
      claimedBy.set(k, { ...indexKeyOf(tenantId, index), contactId, claimedAt: now });
    }
    for (const index of previous.filter((o) => !next.some((n) => sameIndex(o, n)))) {
      const k = keyString(index);
      owners.set(k, undefined);
      // Claimed earlier in this batch: simply not claimed; otherwise the stored entry is released.
      if (!claimedBy.delete(k)) released.set(k, { key: indexKeyOf(tenantId, index), contactId });
    }
    outcomes.push({ row, result: created ? 'created' : 'updated', contactId });
  }

  // One seal per written contact, over its final fields; new data keys are stored together first.
  const created = new Set([...contacts].filter(([, c]) => !c.base).map(([id]) => id));
  const keys = new BufferedDataKeys(writer.dataKeys, tenantId, created);
  const cipher = new ContactCipher({ keys: deps.keys, dataKeys: keys });
  const batch: { -readonly [K in keyof ContactWriteBatch]: ContactWriteBatch[K][number][] } = {
    releases: [...released.values()],
    claims: [...claimedBy.values()],
    creates: [],
    updates: [],
  };
  for (const [contactId, c] of contacts) {
    if (c.events.length === 0) continue;
    const contact: StoredContact = {
      tenantId,
      contactId,
      version: c.version,
      record: await cipher.seal(tenantId, contactId, toSealable(c.fields)),
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
  let written = false;
  try {
    written = await writer.writeContacts(batch);
  } finally {
    // Keys of contacts that were not written decrypt nothing; remove them rather than leave orphans.
    if (!written) for (const k of fresh) await deps.cipher.shred(tenantId, k.contactId).catch(() => undefined);
  }
  if (!written) return undefined;
  return outcomes.map((o) => {
    if (o.result === 'rejected') {
      const r = rejection(o.row, o.err);
      if (!r) throw o.err;
      return r;
    }
    return { row: o.row.row, result: o.result, contactId: o.contactId, reason: '', field: '' };
  });
}
