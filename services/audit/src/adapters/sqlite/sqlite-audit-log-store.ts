import { type SqliteDatabase, type SqliteMigration, WalCheckpointer, openSqlite } from '@sealpost/storage';
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
  type VerifyPage,
  checkAppendBatch,
  checkEntryQuery,
  checkPrunePoint,
  decodePageToken,
  encodePageToken,
} from '../../ports/audit-log-store';

/** Schema of the audit log in the service's SQLite file. */
export const AUDIT_SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'audit log: leaves, nodes, head, tree heads',
    up: `
      CREATE TABLE audit_leaves (
        idx INTEGER PRIMARY KEY,
        entry_id TEXT NOT NULL UNIQUE,
        canonical BLOB NOT NULL,
        leaf_hash BLOB NOT NULL,
        tenant_id TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        occurred_at INTEGER NOT NULL
      );
      CREATE INDEX audit_leaves_tenant ON audit_leaves (tenant_id, idx);
      CREATE INDEX audit_leaves_actor ON audit_leaves (actor_id, idx);
      CREATE INDEX audit_leaves_action ON audit_leaves (action, idx);
      CREATE INDEX audit_leaves_time ON audit_leaves (occurred_at, idx);
      CREATE TABLE audit_leaf_resources (
        resource_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        PRIMARY KEY (resource_id, idx)
      ) WITHOUT ROWID;
      CREATE TABLE audit_nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
      CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        size INTEGER NOT NULL,
        root BLOB NOT NULL,
        token INTEGER NOT NULL
      );
      CREATE TABLE audit_tree_heads (
        tree_size INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        log_id TEXT NOT NULL,
        root_hash TEXT NOT NULL,
        jws TEXT NOT NULL,
        kid TEXT NOT NULL,
        PRIMARY KEY (tree_size, timestamp)
      );
    `,
  },
  {
    version: 2,
    name: 'audit log retention: prune point',
    up: `
      CREATE TABLE audit_prune (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pruned_before INTEGER NOT NULL
      );
    `,
  },
];

interface HeadRow {
  size: number;
  root: Buffer;
  token: number;
}
interface LeafRow {
  idx: number;
  entry_id: string;
  canonical: Buffer;
  leaf_hash: Buffer;
}
interface HeadDbRow {
  tree_size: number;
  timestamp: number;
  log_id: string;
  root_hash: string;
  jws: string;
  kid: string;
}

/**
 * AuditLogStore over SQLite (better-sqlite3, WAL, synchronous=FULL). Each append is one IMMEDIATE transaction,
 * so leaves, nodes and the head move together; the head check inside it is the compare-and-set.
 */
export class SqliteAuditLogStore implements AuditLogStore {
  private readonly st;

  private constructor(
    readonly db: SqliteDatabase,
    private readonly ownsDb: boolean,
    private readonly checkpointer?: WalCheckpointer,
  ) {
    this.st = {
      head: db.prepare<[], HeadRow>('SELECT size, root, token FROM audit_head WHERE id = 1'),
      setHead: db.prepare<[number, Buffer, number]>(
        'INSERT INTO audit_head (id, size, root, token) VALUES (1, ?, ?, ?) ' +
          'ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root, token = excluded.token',
      ),
      insertLeaf: db.prepare(
        'INSERT INTO audit_leaves (idx, entry_id, canonical, leaf_hash, tenant_id, actor_id, action, occurred_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      leafAt: db.prepare<[number], LeafRow>(
        'SELECT idx, entry_id, canonical, leaf_hash FROM audit_leaves WHERE idx = ?',
      ),
      insertResource: db.prepare('INSERT OR IGNORE INTO audit_leaf_resources (resource_id, idx) VALUES (?, ?)'),
      insertNode: db.prepare('INSERT INTO audit_nodes (id, hash) VALUES (?, ?) ON CONFLICT DO NOTHING'),
      nodeAt: db.prepare<[number], Buffer>('SELECT hash FROM audit_nodes WHERE id = ?').pluck(),
      range: db.prepare<[number, number], LeafRow>(
        'SELECT idx, entry_id, canonical, leaf_hash FROM audit_leaves WHERE idx >= ? AND idx < ? ORDER BY idx',
      ),
      byEntryId: db.prepare<[string, number], LeafRow>(
        'SELECT idx, entry_id, canonical, leaf_hash FROM audit_leaves WHERE entry_id = ? AND idx < ?',
      ),
      // Bulk inserts (see insertBulk): the blobs are cut out of one concatenated parameter with substr (bytes).
      bulkLeaves: db.prepare<[{ rows: string; bytes: Buffer; hashes: Buffer }]>(
        'INSERT INTO audit_leaves (idx, entry_id, canonical, leaf_hash, tenant_id, actor_id, action, occurred_at) ' +
          'SELECT j.value ->> 0, j.value ->> 1, substr(@bytes, (j.value ->> 7) + 1, j.value ->> 6), ' +
          'substr(@hashes, j.key * 32 + 1, 32), j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 ' +
          'FROM json_each(@rows) j',
      ),
      bulkResources: db.prepare<[string]>(
        'INSERT OR IGNORE INTO audit_leaf_resources (resource_id, idx) SELECT value ->> 0, value ->> 1 FROM json_each(?)',
      ),
      bulkNodes: db.prepare<[{ ids: string; hashes: Buffer }]>(
        'INSERT INTO audit_nodes (id, hash) SELECT j.value, substr(@hashes, j.key * 32 + 1, 32) FROM json_each(@ids) j',
      ),
      existingIds: db
        .prepare<[string, number], string>(
          'SELECT entry_id FROM audit_leaves WHERE entry_id IN (SELECT value FROM json_each(?)) AND idx < ?',
        )
        .pluck(),
      putSth: db.prepare(
        'INSERT INTO audit_tree_heads (tree_size, timestamp, log_id, root_hash, jws, kid) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT DO NOTHING',
      ),
      sthAt: db.prepare<[number, number], HeadDbRow>(
        'SELECT * FROM audit_tree_heads WHERE tree_size = ? AND timestamp = ?',
      ),
      latestSth: db.prepare<[], HeadDbRow>(
        'SELECT * FROM audit_tree_heads ORDER BY tree_size DESC, timestamp DESC LIMIT 1',
      ),
      sthOfSize: db.prepare<[number], HeadDbRow>(
        'SELECT * FROM audit_tree_heads WHERE tree_size = ? ORDER BY timestamp DESC LIMIT 1',
      ),
      allSth: db.prepare<[], HeadDbRow>('SELECT * FROM audit_tree_heads ORDER BY tree_size, timestamp'),
      // Level-0 nodes sit at even flat ids 2i; interior nodes interleave at odd ids, skipped by the filter.
      leafNodes: db.prepare<[number, number], { id: number; hash: Buffer }>(
        'SELECT id, hash FROM audit_nodes WHERE id >= ? AND id < ? AND (id % 2) = 0 ORDER BY id',
      ),
      // Verification pages: SQLite concatenates a page of blobs (group_concat keeps a blob's bytes; CAST AS BLOB
      // takes them back), so 1M entries cost ~250 rows to JS instead of 2M — the per-row Buffer was most of the time.
      // The ORDER BY sits in a subquery (already the scan order, no sort); group_concat follows it. Were it not to,
      // the recomputed root would differ and verification would fall back to the row-by-row path, never accept.
      verifyEntries: db.prepare<
        [number, number],
        { n: number; lo: number | null; hi: number | null; bytes: Buffer | null; lens: string | null }
      >(
        'SELECT count(*) AS n, min(idx) AS lo, max(idx) AS hi, ' +
          "CAST(group_concat(canonical, '') AS BLOB) AS bytes, group_concat(length(canonical), ',') AS lens " +
          'FROM (SELECT idx, canonical FROM audit_leaves WHERE idx >= ? AND idx < ? ORDER BY idx)',
      ),
      verifyHashes: db.prepare<[number, number], { n: number; bad: number | null; bytes: Buffer | null }>(
        "SELECT count(*) AS n, sum(length(hash) != 32) AS bad, CAST(group_concat(hash, '') AS BLOB) AS bytes " +
          'FROM (SELECT hash FROM audit_nodes WHERE id >= ? AND id < ? AND (id % 2) = 0 ORDER BY id)',
      ),
      prunePoint: db.prepare<[], number>('SELECT pruned_before FROM audit_prune WHERE id = 1').pluck(),
      setPrunePoint: db.prepare<[number]>(
        'INSERT INTO audit_prune (id, pruned_before) VALUES (1, ?) ' +
          'ON CONFLICT (id) DO UPDATE SET pruned_before = MAX(pruned_before, excluded.pruned_before)',
      ),
      pruneLeaves: db.prepare<[number]>('DELETE FROM audit_leaves WHERE idx < ?'),
      pruneResources: db.prepare<[number]>('DELETE FROM audit_leaf_resources WHERE idx < ?'),
    };
  }

  /**
   * Opens (and migrates) the audit log in `file`, checkpointed by a worker thread so no append waits for a
   * checkpoint (`onError` hears of the worker's failures; SQLite checkpoints by itself again if it dies).
   */
  static open(file: string, options: { readonly onError?: (error: unknown) => void } = {}): SqliteAuditLogStore {
    const db = openSqlite(file, { migrations: AUDIT_SQLITE_MIGRATIONS });
    return new SqliteAuditLogStore(db, true, WalCheckpointer.start(db, file, options));
  }

  private headNow(): LogHead {
    const row = this.st.head.get();
    return row
      ? { size: row.size, root: Buffer.from(row.root), token: row.token }
      : { size: 0, root: emptyRoot(), token: 0 };
  }

  async readHead(): Promise<LogHead> {
    return this.headNow();
  }

  async fence(token: number): Promise<LogHead> {
    return this.db
      .transaction((): LogHead => {
        const head = this.headNow();
        if (head.token > token) throw fenced(head.token, token);
        // One transaction per append leaves nothing uncommitted above the head; only the token moves.
        this.st.setHead.run(head.size, head.root, token);
        return { ...head, token };
      })
      .immediate();
  }

  async append(batch: AppendBatch): Promise<LogHead> {
    checkAppendBatch(batch);
    const st = this.st;
    return this.db
      .transaction((): LogHead => {
        const head = this.headNow();
        if (head.token > batch.token) throw fenced(head.token, batch.token);
        if (head.size !== batch.expectedSize) {
          throw new AuditStoreError(
            'HEAD_CONFLICT',
            `head is at ${head.size}, the batch expected ${batch.expectedSize}`,
          );
        }
        // Fast path: the whole batch in three statements. Any constraint hit (a replayed or conflicting leaf or
        // node) rolls the savepoint back, and the row-by-row path below tells identical replays from conflicts.
        try {
          this.db.transaction(() => this.insertBulk(batch))();
        } catch (err) {
          if (!isConstraintError(err)) throw err;
          this.insertRowByRow(batch);
        }
        const size = batch.expectedSize + batch.leaves.length;
        st.setHead.run(size, batch.newRoot, batch.token);
        return { size, root: Buffer.from(batch.newRoot), token: batch.token };
      })
      .immediate();
  }

  /** Inserts a batch's leaves, resources and nodes with one statement each (rows as JSON, blobs concatenated). */
  private insertBulk(batch: AppendBatch): void {
    const rows: (string | number)[][] = [];
    const resources: (string | number)[][] = [];
    const canonical: Buffer[] = [];
    let offset = 0;
    for (const l of batch.leaves) {
      rows.push([l.index, l.entryId, l.tenantId, l.actorId, l.action, l.occurredAt, l.canonical.length, offset]);
      offset += l.canonical.length;
      canonical.push(l.canonical);
      for (const rid of l.resourceIds) resources.push([rid, l.index]);
    }
    this.st.bulkLeaves.run({
      rows: JSON.stringify(rows),
      bytes: Buffer.concat(canonical, offset),
      hashes: Buffer.concat(batch.leaves.map((l) => l.leafHash)),
    });
    if (resources.length > 0) this.st.bulkResources.run(JSON.stringify(resources));
    this.st.bulkNodes.run({
      ids: JSON.stringify(batch.nodes.map((n) => flatIndex(n.level, n.index))),
      hashes: Buffer.concat(batch.nodes.map((n) => n.hash)),
    });
  }

  /** Row-by-row insert: idempotent by index (an identical leaf or node may already be there), else LEAF_CONFLICT. */
  private insertRowByRow(batch: AppendBatch): void {
    const st = this.st;
    for (const l of batch.leaves) {
      const r = st.insertLeaf.run(
        l.index,
        l.entryId,
        l.canonical,
        l.leafHash,
        l.tenantId,
        l.actorId,
        l.action,
        l.occurredAt,
      );
      if (r.changes === 0) {
        // Idempotent by index: only the identical leaf may already be there.
        const old = st.leafAt.get(l.index);
        if (!old || old.entry_id !== l.entryId || !old.canonical.equals(l.canonical)) {
          throw new AuditStoreError('LEAF_CONFLICT', `leaf ${l.index} or its entry id is already stored differently`);
        }
      }
      for (const rid of l.resourceIds) st.insertResource.run(rid, l.index);
    }
    for (const n of batch.nodes) {
      const id = flatIndex(n.level, n.index);
      if (st.insertNode.run(id, n.hash).changes === 0 && !st.nodeAt.get(id)?.equals(n.hash)) {
        throw new AuditStoreError('LEAF_CONFLICT', `node (${n.level}, ${n.index}) is already stored differently`);
      }
    }
  }

  get(level: number, index: number): Buffer | undefined {
    return this.st.nodeAt.get(flatIndex(level, index));
  }

  private readonly manyNodes = new Map<number, import('better-sqlite3').Statement<number[], [number, Buffer]>>();

  getMany(ids: readonly NodeId[]): (Buffer | undefined)[] {
    if (ids.length <= 1 || ids.length > 128) return ids.map((id) => this.get(id.level, id.index));
    // One statement per proof instead of one per node (a proof reads ~2·log2(n) nodes); raw rows, no Map:
    // this is the proof hot path and the lists are short.
    let st = this.manyNodes.get(ids.length);
    if (!st) {
      st = this.db
        .prepare<number[], [number, Buffer]>(
          `SELECT id, hash FROM audit_nodes WHERE id IN (${ids.map(() => '?').join(',')})`,
        )
        .raw();
      this.manyNodes.set(ids.length, st);
    }
    const keys = new Array<number>(ids.length);
    for (let k = 0; k < ids.length; k++) keys[k] = flatIndex(ids[k]!.level, ids[k]!.index);
    const out = new Array<Buffer | undefined>(ids.length).fill(undefined);
    for (const [id, hash] of st.all(...keys)) {
      for (let k = 0; k < keys.length; k++) if (keys[k] === id) out[k] = hash;
    }
    return out;
  }

  async getEntries(start: number, end: number): Promise<StoredLeaf[]> {
    const size = this.headNow().size;
    return this.st.range.all(start, Math.min(end, size)).map(leafOf);
  }

  async findByEntryId(entryId: string): Promise<StoredLeaf | undefined> {
    const row = this.st.byEntryId.get(entryId, this.headNow().size);
    return row ? leafOf(row) : undefined;
  }

  async existingEntryIds(entryIds: readonly string[]): Promise<Set<string>> {
    if (entryIds.length === 0) return new Set();
    // One statement per batch (ids as a JSON array, looked up through the entry_id index), not one per id.
    const found = this.st.existingIds.all(JSON.stringify(entryIds), this.headNow().size);
    return new Set(found);
  }

  async queryEntries(q: EntryQuery): Promise<EntryPage> {
    checkEntryQuery(q);
    const after = decodePageToken(q.pageToken);
    const where: string[] = ['l.idx > @after', 'l.idx < @size'];
    const params: Record<string, unknown> = { after, size: this.headNow().size, limit: q.pageSize + 1 };
    let from = 'audit_leaves l';
    if (q.resourceId !== undefined) {
      from = 'audit_leaf_resources r JOIN audit_leaves l ON l.idx = r.idx';
      where.push('r.resource_id = @resourceId');
      params['resourceId'] = q.resourceId;
    }
    const eq = (value: string | number | undefined, clause: string, name: string): void => {
      if (value === undefined) return;
      where.push(clause);
      params[name] = value;
    };
    eq(q.tenantId, 'l.tenant_id = @tenantId', 'tenantId');
    eq(q.actorId, 'l.actor_id = @actorId', 'actorId');
    eq(q.action, 'l.action = @action', 'action');
    eq(q.fromMs, 'l.occurred_at >= @fromMs', 'fromMs');
    eq(q.toMs, 'l.occurred_at < @toMs', 'toMs');
    const sql =
      `SELECT l.idx, l.entry_id, l.canonical, l.leaf_hash FROM ${from} WHERE ${where.join(' AND ')} ` +
      'ORDER BY l.idx LIMIT @limit';
    const rows = this.db.prepare<[Record<string, unknown>], LeafRow>(sql).all(params);
    const more = rows.length > q.pageSize;
    const entries = rows.slice(0, q.pageSize).map(leafOf);
    return { entries, nextPageToken: more ? encodePageToken(entries[entries.length - 1]!.index) : '' };
  }

  async putTreeHead(h: StoredTreeHead): Promise<void> {
    const r = this.st.putSth.run(h.treeSize, h.timestamp, h.logId, h.rootHash, h.jws, h.kid);
    if (r.changes === 0) {
      const old = this.st.sthAt.get(h.treeSize, h.timestamp);
      if (!old || old.jws !== h.jws) {
        throw new AuditStoreError(
          'LEAF_CONFLICT',
          `a different tree head of size ${h.treeSize} is stored at that time`,
        );
      }
    }
  }

  async latestTreeHead(): Promise<StoredTreeHead | undefined> {
    const row = this.st.latestSth.get();
    return row ? sthOf(row) : undefined;
  }

  async treeHeadOfSize(treeSize: number): Promise<StoredTreeHead | undefined> {
    const row = this.st.sthOfSize.get(treeSize);
    return row ? sthOf(row) : undefined;
  }

  async listTreeHeads(): Promise<StoredTreeHead[]> {
    return this.st.allSth.all().map(sthOf);
  }

  async getLeafHashes(start: number, end: number): Promise<(Buffer | undefined)[]> {
    const stop = Math.min(end, this.headNow().size);
    if (!(stop > start)) return [];
    const out = new Array<Buffer | undefined>(stop - start).fill(undefined);
    for (const row of this.st.leafNodes.iterate(flatIndex(0, start), flatIndex(0, stop)))
      out[row.id / 2 - start] = row.hash;
    return out;
  }

  async readVerifyPage(start: number, end: number): Promise<VerifyPage> {
    const stop = Math.min(end, this.headNow().size);
    if (!(stop > start)) {
      return {
        count: 0,
        contiguous: true,
        bytes: Buffer.alloc(0),
        lengths: [],
        leafHashes: Buffer.alloc(0),
        leafHashCount: 0,
      };
    }
    // One read transaction: the entries and hashes come from the same snapshot.
    return this.db.transaction((): VerifyPage => {
      const e = this.st.verifyEntries.get(start, stop)!;
      const h = this.st.verifyHashes.get(flatIndex(0, start), flatIndex(0, stop))!;
      const lengths = e.lens ? e.lens.split(',').map(Number) : [];
      const bytes = e.bytes ?? Buffer.alloc(0);
      const total = lengths.reduce((a, b) => a + b, 0);
      return {
        count: e.n,
        // idx is the primary key, so n rows spanning exactly [start, start + n) are gap-free.
        contiguous: e.n === 0 || (e.lo === start && e.hi === start + e.n - 1 && total === bytes.length),
        bytes,
        lengths,
        leafHashes: h.bytes !== null && h.bad === 0 && h.bytes.length === h.n * 32 ? h.bytes : Buffer.alloc(0),
        leafHashCount: h.bad === 0 ? h.n : 0,
      };
    })();
  }

  async prunedBefore(): Promise<number> {
    return this.st.prunePoint.get() ?? 0;
  }

  async pruneEntries(end: number): Promise<number> {
    return this.db
      .transaction((): number => {
        checkPrunePoint(end, this.headNow().size);
        this.st.setPrunePoint.run(end);
        const point = this.st.prunePoint.get() ?? 0;
        this.st.pruneResources.run(point);
        this.st.pruneLeaves.run(point);
        return point;
      })
      .immediate();
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.ownsDb && this.db.open) this.db.close();
  }
}

function isConstraintError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT');
}

function fenced(stored: number, token: number): AuditStoreError {
  return new AuditStoreError('FENCED', `head carries token ${stored}, newer than writer token ${token}`);
}

function leafOf(r: LeafRow): StoredLeaf {
  return { index: r.idx, entryId: r.entry_id, canonical: Buffer.from(r.canonical), leafHash: Buffer.from(r.leaf_hash) };
}

function sthOf(r: HeadDbRow): StoredTreeHead {
  return {
    logId: r.log_id,
    treeSize: r.tree_size,
    rootHash: r.root_hash,
    timestamp: r.timestamp,
    jws: r.jws,
    kid: r.kid,
  };
}
