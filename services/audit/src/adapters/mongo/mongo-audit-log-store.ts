import { Binary, type Collection, type Db, MongoBulkWriteError, MongoServerError } from 'mongodb';
import { ensureIndexes } from '@sealpost/storage';
import { emptyRoot } from '@sealpost/audit-format';
import { type NodeId, flatIndex } from '../../domain';
import {
  type AppendBatch,
  type AuditLogStore,
  AuditStoreError,
  type EntryPage,
  type EntryQuery,
  type LogHead,
  type StoredLeaf,
  type StoredTreeHead,
  checkAppendBatch,
  checkEntryQuery,
  checkPrunePoint,
  decodePageToken,
  encodePageToken,
} from '../../ports/audit-log-store';

interface LeafDoc {
  _id: number;
  entryId: string;
  canonical: Binary;
  leafHash: Binary;
  tenantId: string;
  actorId: string;
  action: string;
  resourceIds: string[];
  occurredAt: number;
  /** Token of the writer that inserted it: leftovers above the head are removed only by a newer writer. */
  token: number;
}

interface NodeDoc {
  _id: number;
  level: number;
  index: number;
  /** Exclusive end of the node's leaf range: the node is committed once the head reaches it. */
  end: number;
  hash: Binary;
  token: number;
}

/** One version of the head. Versions are inserted, never updated: the `_id` collision is the compare-and-set. */
interface HeadDoc {
  _id: number;
  size: number;
  root: Binary;
  token: number;
  at: number;
}

interface SthDoc {
  _id: string;
  logId: string;
  treeSize: number;
  rootHash: string;
  timestamp: number;
  jws: string;
  kid: string;
}

/** The retention prune point (one document, `_id: 'prune'`). */
interface MetaDoc {
  _id: string;
  prunedBefore: number;
}

const DUPLICATE_KEY = 11000;
// Old head versions are pruned, but only far behind the newest, so a very late writer still collides on `_id`.
const KEEP_HEAD_VERSIONS = 64;

/**
 * AuditLogStore over MongoDB / FerretDB v1 without multi-document transactions. Leaves and nodes are inserted
 * idempotently by index (a duplicate is accepted only when identical), then the head moves by inserting its next
 * version: FerretDB v1 does not apply a filtered update atomically, but an `_id` collision on insert is atomic
 * everywhere, so two writers can never both succeed from the same version (no fork).
 */
export class MongoAuditLogStore implements AuditLogStore {
  private readonly leaves: Collection<LeafDoc>;
  private readonly nodes: Collection<NodeDoc>;
  private readonly heads: Collection<HeadDoc>;
  private readonly sths: Collection<SthDoc>;
  private readonly meta: Collection<MetaDoc>;

  private constructor(
    readonly db: Db,
    private readonly onClose?: () => Promise<void>,
  ) {
    this.leaves = db.collection('audit_leaves');
    this.nodes = db.collection('audit_nodes');
    this.heads = db.collection('audit_head');
    this.sths = db.collection('audit_tree_heads');
    this.meta = db.collection('audit_meta');
  }

  /** Creates the indexes (idempotent) and returns the store; `onClose` runs on `close()` (e.g. the client's). */
  static async open(db: Db, onClose?: () => Promise<void>): Promise<MongoAuditLogStore> {
    await ensureIndexes(db, {
      audit_leaves: [
        { name: 'entry_id_unique', key: { entryId: 1 }, unique: true },
        { name: 'tenant_idx', key: { tenantId: 1, _id: 1 } },
        { name: 'actor_idx', key: { actorId: 1, _id: 1 } },
        { name: 'resource_idx', key: { resourceIds: 1, _id: 1 } },
        { name: 'action_idx', key: { action: 1, _id: 1 } },
        { name: 'time_idx', key: { occurredAt: 1, _id: 1 } },
        { name: 'token_idx', key: { token: 1 } },
      ],
      audit_nodes: [{ name: 'end_idx', key: { end: 1 } }],
      audit_tree_heads: [{ name: 'size_time_idx', key: { treeSize: 1, timestamp: 1 } }],
    });
    return new MongoAuditLogStore(db, onClose);
  }

  private async headVersion(): Promise<{ version: number; head: LogHead }> {
    const doc = await this.heads.find({}).sort({ _id: -1 }).limit(1).next();
    if (!doc) return { version: 0, head: { size: 0, root: emptyRoot(), token: 0 } };
    return { version: doc._id, head: { size: doc.size, root: Buffer.from(doc.root.buffer), token: doc.token } };
  }

  async readHead(): Promise<LogHead> {
    return (await this.headVersion()).head;
  }

  /** Inserts head version `version + 1`; false when another writer inserted it first. */
  private async casHead(version: number, head: LogHead): Promise<boolean> {
    try {
      await this.heads.insertOne({
        _id: version + 1,
        size: head.size,
        root: new Binary(head.root),
        token: head.token,
        at: Date.now(),
      });
    } catch (err) {
      if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return false;
      throw err;
    }
    if (version + 1 > KEEP_HEAD_VERSIONS) {
      await this.heads.deleteMany({ _id: { $lt: version + 1 - KEEP_HEAD_VERSIONS } }).catch(() => undefined);
    }
    return true;
  }

  async fence(token: number): Promise<LogHead> {
    for (;;) {
      const { version, head } = await this.headVersion();
      if (head.token > token) throw fenced(head.token, token);
      const next = { ...head, token };
      // Bump the token first: from here on an older writer's head CAS fails, so the clean-up below cannot race
      // with a commit of the leaves it removes.
      if (head.token < token && !(await this.casHead(version, next))) continue;
      await this.leaves.deleteMany({ _id: { $gte: head.size }, token: { $lte: token } });
      await this.nodes.deleteMany({ end: { $gt: head.size }, token: { $lte: token } });
      return next;
    }
  }

  async append(batch: AppendBatch): Promise<LogHead> {
    checkAppendBatch(batch);
    const { version, head } = await this.headVersion();
    if (head.token > batch.token) throw fenced(head.token, batch.token);
    if (head.size !== batch.expectedSize) {
      throw new AuditStoreError('HEAD_CONFLICT', `head is at ${head.size}, the batch expected ${batch.expectedSize}`);
    }
    const leafDocs: LeafDoc[] = batch.leaves.map((l) => ({
      _id: l.index,
      entryId: l.entryId,
      canonical: new Binary(l.canonical),
      leafHash: new Binary(l.leafHash),
      tenantId: l.tenantId,
      actorId: l.actorId,
      action: l.action,
      resourceIds: [...l.resourceIds],
      occurredAt: l.occurredAt,
      token: batch.token,
    }));
    await this.insertIdempotently(this.leaves, leafDocs, async (dup) => {
      const old = await this.leaves.findOne({ _id: dup._id });
      return !!old && old.entryId === dup.entryId && Buffer.from(old.canonical.buffer).equals(dup.canonical.buffer);
    });
    const nodeDocs: NodeDoc[] = batch.nodes.map((n) => ({
      _id: flatIndex(n.level, n.index),
      level: n.level,
      index: n.index,
      end: (n.index + 1) * 2 ** n.level,
      hash: new Binary(n.hash),
      token: batch.token,
    }));
    await this.insertIdempotently(this.nodes, nodeDocs, async (dup) => {
      const old = await this.nodes.findOne({ _id: dup._id });
      return !!old && Buffer.from(old.hash.buffer).equals(dup.hash.buffer);
    });
    const size = batch.expectedSize + batch.leaves.length;
    const next: LogHead = { size, root: Buffer.from(batch.newRoot), token: batch.token };
    if (!(await this.casHead(version, next))) {
      const now = await this.readHead();
      if (now.token > batch.token) throw fenced(now.token, batch.token);
      throw new AuditStoreError('HEAD_CONFLICT', `head moved from ${head.size} while appending`);
    }
    return next;
  }

  private async insertIdempotently<T extends { _id: number }>(
    coll: Collection<T>,
    docs: T[],
    identical: (doc: T) => Promise<boolean>,
  ): Promise<void> {
    if (docs.length === 0) return;
    try {
      await coll.insertMany(docs as never, { ordered: false });
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError || err instanceof MongoServerError)) throw err;
      const writeErrors = err instanceof MongoBulkWriteError ? normalize(err.writeErrors) : [];
      if (writeErrors.length === 0) throw err;
      for (const we of writeErrors) {
        const doc = docs[we.index];
        if (we.code !== DUPLICATE_KEY || !doc || !(await identical(doc))) {
          throw new AuditStoreError(
            'LEAF_CONFLICT',
            `${coll.collectionName} ${doc?._id ?? '?'} is already stored differently`,
            { cause: err },
          );
        }
      }
    }
  }

  async get(level: number, index: number): Promise<Buffer | undefined> {
    const doc = await this.nodes.findOne({ _id: flatIndex(level, index) });
    return doc ? Buffer.from(doc.hash.buffer) : undefined;
  }

  async getMany(ids: readonly NodeId[]): Promise<(Buffer | undefined)[]> {
    if (ids.length === 0) return [];
    const keys = ids.map((id) => flatIndex(id.level, id.index));
    const docs = await this.nodes.find({ _id: { $in: keys } }).toArray();
    const byId = new Map(docs.map((d) => [d._id, Buffer.from(d.hash.buffer)]));
    return keys.map((k) => byId.get(k));
  }

  async getEntries(start: number, end: number): Promise<StoredLeaf[]> {
    const size = (await this.readHead()).size;
    const docs = await this.leaves
      .find({ _id: { $gte: start, $lt: Math.min(end, size) } })
      .sort({ _id: 1 })
      .toArray();
    return docs.map(leafOf);
  }

  async findByEntryId(entryId: string): Promise<StoredLeaf | undefined> {
    const size = (await this.readHead()).size;
    const doc = await this.leaves.findOne({ entryId, _id: { $lt: size } });
    return doc ? leafOf(doc) : undefined;
  }

  async existingEntryIds(entryIds: readonly string[]): Promise<Set<string>> {
    if (entryIds.length === 0) return new Set();
    const size = (await this.readHead()).size;
    const docs = await this.leaves
      .find({ entryId: { $in: [...entryIds] }, _id: { $lt: size } }, { projection: { entryId: 1 } })
      .toArray();
    return new Set(docs.map((d) => d.entryId));
  }

  async queryEntries(q: EntryQuery): Promise<EntryPage> {
    checkEntryQuery(q);
    const after = decodePageToken(q.pageToken);
    const size = (await this.readHead()).size;
    const filter: Record<string, unknown> = { _id: { $gt: after, $lt: size } };
    if (q.tenantId !== undefined) filter['tenantId'] = q.tenantId;
    if (q.actorId !== undefined) filter['actorId'] = q.actorId;
    if (q.action !== undefined) filter['action'] = q.action;
    if (q.resourceId !== undefined) filter['resourceIds'] = q.resourceId;
    if (q.fromMs !== undefined || q.toMs !== undefined) {
      filter['occurredAt'] = {
        ...(q.fromMs !== undefined ? { $gte: q.fromMs } : {}),
        ...(q.toMs !== undefined ? { $lt: q.toMs } : {}),
      };
    }
    const docs = await this.leaves
      .find(filter)
      .sort({ _id: 1 })
      .limit(q.pageSize + 1)
      .toArray();
    const more = docs.length > q.pageSize;
    const entries = docs.slice(0, q.pageSize).map(leafOf);
    return { entries, nextPageToken: more ? encodePageToken(entries[entries.length - 1]!.index) : '' };
  }

  async putTreeHead(h: StoredTreeHead): Promise<void> {
    const doc: SthDoc = { _id: `${h.treeSize}:${h.timestamp}`, ...h };
    try {
      await this.sths.insertOne(doc);
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
      const old = await this.sths.findOne({ _id: doc._id });
      if (old?.jws !== h.jws) {
        throw new AuditStoreError(
          'LEAF_CONFLICT',
          `a different tree head of size ${h.treeSize} is stored at that time`,
        );
      }
    }
  }

  async latestTreeHead(): Promise<StoredTreeHead | undefined> {
    const doc = await this.sths.find({}).sort({ treeSize: -1, timestamp: -1 }).limit(1).next();
    return doc ? sthOf(doc) : undefined;
  }

  async treeHeadOfSize(treeSize: number): Promise<StoredTreeHead | undefined> {
    const doc = await this.sths.find({ treeSize }).sort({ timestamp: -1 }).limit(1).next();
    return doc ? sthOf(doc) : undefined;
  }

  async listTreeHeads(): Promise<StoredTreeHead[]> {
    return (await this.sths.find({}).sort({ treeSize: 1, timestamp: 1 }).toArray()).map(sthOf);
  }

  async getLeafHashes(start: number, end: number): Promise<(Buffer | undefined)[]> {
    const stop = Math.min(end, (await this.readHead()).size);
    if (!(stop > start)) return [];
    const out = new Array<Buffer | undefined>(stop - start).fill(undefined);
    const cursor = this.nodes
      .find(
        { _id: { $gte: flatIndex(0, start), $lt: flatIndex(0, stop) }, level: 0 },
        { projection: { index: 1, hash: 1 } },
      )
      .sort({ _id: 1 });
    for await (const d of cursor) out[d.index - start] = Buffer.from(d.hash.buffer);
    return out;
  }

  async prunedBefore(): Promise<number> {
    return (await this.meta.findOne({ _id: 'prune' }))?.prunedBefore ?? 0;
  }

  async pruneEntries(end: number): Promise<number> {
    checkPrunePoint(end, (await this.readHead()).size);
    const point = Math.max(end, await this.prunedBefore());
    // The point first: a crash between the two steps leaves entries below it that verification simply skips.
    await this.meta.updateOne({ _id: 'prune' }, { $set: { prunedBefore: point } }, { upsert: true });
    await this.leaves.deleteMany({ _id: { $lt: point } });
    return point;
  }

  async close(): Promise<void> {
    await this.onClose?.();
  }
}

function normalize(errors: unknown): { index: number; code: number }[] {
  const list = Array.isArray(errors) ? errors : errors && typeof errors === 'object' ? Object.values(errors) : [];
  return list.map((e: { index: number; code: number }) => ({ index: e.index, code: e.code }));
}

function fenced(stored: number, token: number): AuditStoreError {
  return new AuditStoreError('FENCED', `head carries token ${stored}, newer than writer token ${token}`);
}

function leafOf(d: LeafDoc): StoredLeaf {
  return {
    index: d._id,
    entryId: d.entryId,
    canonical: Buffer.from(d.canonical.buffer),
    leafHash: Buffer.from(d.leafHash.buffer),
  };
}

function sthOf(d: SthDoc): StoredTreeHead {
  return { logId: d.logId, treeSize: d.treeSize, rootHash: d.rootHash, timestamp: d.timestamp, jws: d.jws, kid: d.kid };
}
