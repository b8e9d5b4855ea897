/**
 * The embedded bus's storage: streams, messages, dedupe ids, durable consumers and pending deliveries in
 * one SQLite file. Every operation is one short IMMEDIATE transaction, so several processes may share the
 * file and a message is handed to one delivery at a time.
 */
import Database from 'better-sqlite3';
import { matchesFilters, type RawDelivery } from '../delivery-policy';
import { NoStreamError, StreamFullError } from '../errors';
import type { PublishAck } from '../port';
import type { StreamSpec } from '../stream-config';
import { subjectMatches } from '../topology';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS streams (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  subject TEXT NOT NULL,
  headers TEXT NOT NULL,
  payload BLOB NOT NULL,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_age ON messages (stream, stored_at);
-- Message ids seen within the duplicate window; older rows are pruned and the id may be reused.
CREATE TABLE IF NOT EXISTS msg_ids (
  stream TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (stream, msg_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS msg_ids_age ON msg_ids (stored_at);
-- delivered_seq: every message at or below it has been handed out (or skipped by the filter) once.
CREATE TABLE IF NOT EXISTS consumers (
  stream TEXT NOT NULL,
  durable TEXT NOT NULL,
  filters TEXT NOT NULL,
  delivered_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (stream, durable)
) WITHOUT ROWID;
-- Delivered but not yet acknowledged: visible again (redelivered) at visible_at.
CREATE TABLE IF NOT EXISTS pending (
  stream TEXT NOT NULL,
  durable TEXT NOT NULL,
  seq INTEGER NOT NULL,
  deliveries INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  PRIMARY KEY (stream, durable, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_due ON pending (stream, durable, visible_at);
`;

export interface StoredMessage {
  readonly stream: string;
  readonly seq: number;
  readonly subject: string;
  readonly headers: Record<string, string>;
  readonly payload: Uint8Array;
  readonly storedAt: number;
}

interface MessageRow {
  stream: string;
  seq: number;
  subject: string;
  headers: string;
  payload: Buffer;
  stored_at: number;
}

/** One message for `appendMany`. */
export interface AppendMessage {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: Record<string, string>;
  readonly msgId: string;
}

export interface FetchRequest {
  readonly stream: string;
  readonly durable: string;
  readonly filters: readonly string[];
  readonly batch: number;
  readonly maxAckPending: number;
  readonly ackWaitMs: number;
}

export class SqliteBusStore {
  readonly db: Database.Database;
  private specs = new Map<string, StreamSpec>();
  private readonly statements = new Map<string, Database.Statement>();
  private readonly streamOfSubject = new Map<string, StreamSpec>();

  constructor(file: string) {
    this.db = new Database(file, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss. A publish resolves
    // as "durably stored" (the audit-before-reveal rule depends on it), so each commit is fsynced.
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
    let lastFilters = '';
    let parsed: string[] = [];
    this.db.function('sp_match', { deterministic: true }, (filters: unknown, subject: unknown) => {
      if (filters !== lastFilters) {
        lastFilters = String(filters);
        parsed = JSON.parse(lastFilters) as string[];
      }
      return matchesFilters(parsed, String(subject)) ? 1 : 0;
    });
    this.loadSpecs();
  }

  /** Prepared once per SQL text: preparing is most of the cost of a small statement. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private loadSpecs(): void {
    this.streamOfSubject.clear();
    const rows = this.stmt('SELECT spec FROM streams').all() as { spec: string }[];
    this.specs = new Map(rows.map((row) => [JSON.parse(row.spec).name as string, JSON.parse(row.spec) as StreamSpec]));
  }

  /** Creates the stream or replaces its settings. */
  upsertStream(spec: StreamSpec): void {
    this.stmt(
      'INSERT INTO streams (name, spec) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec',
    ).run(spec.name, JSON.stringify(spec));
    this.specs.set(spec.name, spec);
    this.streamOfSubject.clear();
  }

  hasStream(name: string): boolean {
    if (!this.specs.has(name)) this.loadSpecs();
    return this.specs.has(name);
  }

  private streamFor(subject: string): StreamSpec | undefined {
    const cached = this.streamOfSubject.get(subject);
    if (cached !== undefined) return cached;
    const find = () => [...this.specs.values()].find((s) => s.subjects.some((p) => subjectMatches(p, subject)));
    const found = find();
    if (found !== undefined) {
      if (this.streamOfSubject.size > 10_000) this.streamOfSubject.clear();
      this.streamOfSubject.set(subject, found);
      return found;
    }
    // Another process (or bus instance) may have created it since we last looked.
    this.loadSpecs();
    return find();
  }

  /** Stores a message unless its id was seen within the duplicate window. Throws `NoStreamError`, `StreamFullError`. */
  append(
    subject: string,
    payload: Uint8Array,
    headers: Record<string, string>,
    msgId: string,
    now: number,
  ): PublishAck {
    return this.appendMany([{ subject, payload, headers, msgId }], now)[0]!;
  }

  /**
   * Stores messages in order, all or none (one transaction, or a savepoint inside the caller's), each unless its id
   * was seen within the duplicate window — also earlier in the same call. Each stream's position is read once and
   * written once per call, not per message. Throws `NoStreamError`, `StreamFullError`.
   */
  appendMany(messages: readonly AppendMessage[], now: number): PublishAck[] {
    const specs = messages.map((m) => {
      const spec = this.streamFor(m.subject);
      if (spec === undefined) throw new NoStreamError(`subject ${m.subject}`);
      return spec;
    });
    return this.db
      .transaction((): PublishAck[] => {
        const seenStmt = this.stmt('SELECT seq, stored_at FROM msg_ids WHERE stream = ? AND msg_id = ?');
        const insertMessage = this.stmt(
          'INSERT INTO messages (stream, seq, subject, headers, payload, stored_at) VALUES (?, ?, ?, ?, ?, ?)',
        );
        const insertId = this.stmt(
          'INSERT OR REPLACE INTO msg_ids (stream, msg_id, seq, stored_at) VALUES (?, ?, ?, ?)',
        );
        const positions = new Map<string, { lastSeq: number; bytes: number }>();
        const acks = messages.map((message, i): PublishAck => {
          const spec = specs[i]!;
          const seen = seenStmt.get(spec.name, message.msgId) as { seq: number; stored_at: number } | undefined;
          if (seen !== undefined && seen.stored_at > now - spec.duplicateWindowMs)
            return { stream: spec.name, seq: seen.seq, duplicate: true };
          let position = positions.get(spec.name);
          if (position === undefined) {
            const row = this.stmt('SELECT last_seq, bytes FROM streams WHERE name = ?').get(spec.name) as {
              last_seq: number;
              bytes: number;
            };
            position = { lastSeq: row.last_seq, bytes: row.bytes };
            positions.set(spec.name, position);
          }
          const size = message.payload.byteLength;
          if (spec.maxBytes !== -1 && position.bytes + size > spec.maxBytes) {
            if (spec.discard === 'new') throw new StreamFullError(spec.name);
            const oldest = this.stmt(
              'SELECT seq, length(payload) AS size FROM messages WHERE stream = ? ORDER BY seq LIMIT 1',
            );
            const remove = this.stmt('DELETE FROM messages WHERE stream = ? AND seq = ?');
            while (position.bytes + size > spec.maxBytes) {
              const row = oldest.get(spec.name) as { seq: number; size: number } | undefined;
              if (row === undefined) break;
              remove.run(spec.name, row.seq);
              position.bytes -= row.size;
            }
          }
          const seq = position.lastSeq + 1;
          insertMessage.run(
            spec.name,
            seq,
            message.subject,
            JSON.stringify(message.headers),
            Buffer.from(message.payload),
            now,
          );
          insertId.run(spec.name, message.msgId, seq, now);
          position.lastSeq = seq;
          position.bytes = Math.max(0, position.bytes) + size;
          return { stream: spec.name, seq, duplicate: false };
        });
        const update = this.stmt('UPDATE streams SET last_seq = ?, bytes = ? WHERE name = ?');
        for (const [name, position] of positions) update.run(position.lastSeq, position.bytes, name);
        return acks;
      })
      .immediate();
  }

  /** Creates the durable or updates its filters; its position is kept. */
  upsertConsumer(stream: string, durable: string, filters: readonly string[]): void {
    if (!this.hasStream(stream)) throw new NoStreamError(`stream ${stream}`);
    this.stmt(
      'INSERT INTO consumers (stream, durable, filters) VALUES (?, ?, ?) ON CONFLICT (stream, durable) DO UPDATE SET filters = excluded.filters',
    ).run(stream, durable, JSON.stringify(filters));
  }

  /**
   * Hands out up to `batch` deliveries: due redeliveries first, then new messages in stream order. Each
   * becomes (or stays) pending, invisible to other fetches until acked or its ack wait passes.
   */
  fetch(request: FetchRequest, now: number): RawDelivery[] {
    return this.db
      .transaction((): RawDelivery[] => {
        const { stream, durable } = request;
        const out: RawDelivery[] = [];
        const visibleAt = now + request.ackWaitMs;
        const due = this.stmt(
          `SELECT m.stream, m.seq, m.subject, m.headers, m.payload, m.stored_at, p.deliveries
             FROM pending p JOIN messages m ON m.stream = p.stream AND m.seq = p.seq
             WHERE p.stream = ? AND p.durable = ? AND p.visible_at <= ? ORDER BY p.seq LIMIT ?`,
        ).all(stream, durable, now, request.batch) as (MessageRow & { deliveries: number })[];
        const redeliver = this.stmt(
          'UPDATE pending SET deliveries = deliveries + 1, visible_at = ? WHERE stream = ? AND durable = ? AND seq = ?',
        );
        for (const row of due) {
          redeliver.run(visibleAt, stream, durable, row.seq);
          out.push(toDelivery(row, row.deliveries + 1));
        }
        const room = Math.min(
          request.batch - out.length,
          request.maxAckPending -
            (
              this.stmt('SELECT count(*) AS n FROM pending WHERE stream = ? AND durable = ?').get(stream, durable) as {
                n: number;
              }
            ).n,
        );
        if (room <= 0) return out;
        const consumer = this.stmt('SELECT delivered_seq FROM consumers WHERE stream = ? AND durable = ?').get(
          stream,
          durable,
        ) as { delivered_seq: number } | undefined;
        if (consumer === undefined) throw new NoStreamError(`consumer ${durable} on ${stream}`);
        // A filter set that covers the whole stream needs no per-row match (a JS callback per row otherwise).
        const fresh = (
          this.coversStream(stream, request.filters)
            ? this.stmt(
                `SELECT stream, seq, subject, headers, payload, stored_at FROM messages
                   WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?`,
              ).all(stream, consumer.delivered_seq, room)
            : this.stmt(
                `SELECT stream, seq, subject, headers, payload, stored_at FROM messages
                   WHERE stream = ? AND seq > ? AND sp_match(?, subject) ORDER BY seq LIMIT ?`,
              ).all(stream, consumer.delivered_seq, JSON.stringify(request.filters), room)
        ) as MessageRow[];
        // One statement marks the whole page pending (seqs as a JSON array), not one per message.
        if (fresh.length > 0) {
          this.stmt(
            `INSERT OR REPLACE INTO pending (stream, durable, seq, deliveries, visible_at)
               SELECT ?, ?, value, 1, ? FROM json_each(?)`,
          ).run(stream, durable, visibleAt, JSON.stringify(fresh.map((row) => row.seq)));
        }
        for (const row of fresh) out.push(toDelivery(row, 1));
        // A short page means everything up to the stream's end was looked at (non-matching ones skipped).
        const last = fresh.at(-1);
        const deliveredSeq =
          fresh.length < room
            ? (this.stmt('SELECT last_seq FROM streams WHERE name = ?').get(stream) as { last_seq: number }).last_seq
            : (last?.seq ?? consumer.delivered_seq);
        if (deliveredSeq !== consumer.delivered_seq)
          this.stmt('UPDATE consumers SET delivered_seq = ? WHERE stream = ? AND durable = ?').run(
            deliveredSeq,
            stream,
            durable,
          );
        return out;
      })
      .immediate();
  }

  /**
   * Messages stored after the consumer's delivered position (JetStream's `num_pending`): not yet handed out.
   * Messages its filters skip count until a fetch passes them. 0 for an unknown consumer.
   */
  consumerLag(stream: string, durable: string): number {
    const row = this.stmt(
      `SELECT s.last_seq - c.delivered_seq AS n FROM consumers c JOIN streams s ON s.name = c.stream
         WHERE c.stream = ? AND c.durable = ?`,
    ).get(stream, durable) as { n: number } | undefined;
    return Math.max(0, row?.n ?? 0);
  }

  /** When the next pending delivery of this consumer becomes due, or null. */
  nextDueAt(stream: string, durable: string): number | null {
    const row = this.stmt('SELECT min(visible_at) AS at FROM pending WHERE stream = ? AND durable = ?').get(
      stream,
      durable,
    ) as { at: number | null };
    return row.at;
  }

  ack(stream: string, durable: string, seq: number): void {
    this.stmt('DELETE FROM pending WHERE stream = ? AND durable = ? AND seq = ?').run(stream, durable, seq);
  }

  /** Acks many deliveries of one consumer in one statement. */
  ackMany(stream: string, durable: string, seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.stmt('DELETE FROM pending WHERE stream = ? AND durable = ? AND seq IN (SELECT value FROM json_each(?))').run(
      stream,
      durable,
      JSON.stringify(seqs),
    );
  }

  /** True when `filters` admit every subject the stream captures (e.g. `sealpost.audit.>` on SEALPOST_AUDIT). */
  private coversStream(stream: string, filters: readonly string[]): boolean {
    const spec = this.specs.get(stream);
    return spec !== undefined && spec.subjects.every((subject) => filters.includes(subject) || filters.includes('>'));
  }

  retryAt(stream: string, durable: string, seq: number, visibleAt: number): void {
    this.stmt('UPDATE pending SET visible_at = ? WHERE stream = ? AND durable = ? AND seq = ?').run(
      visibleAt,
      stream,
      durable,
      seq,
    );
  }

  /** Stores the dead-letter copy and settles the original in one transaction. */
  deadLetter(
    original: { stream: string; durable: string; seq: number },
    message: { subject: string; payload: Uint8Array; headers: Record<string, string>; msgId: string },
    now: number,
  ): PublishAck {
    return this.db
      .transaction(() => {
        const ack = this.append(message.subject, message.payload, message.headers, message.msgId, now);
        this.ack(original.stream, original.durable, original.seq);
        return ack;
      })
      .immediate();
  }

  /** Drops messages past max age, dedupe ids past the window, and pending rows whose message is gone. */
  prune(now: number): void {
    this.loadSpecs();
    this.db
      .transaction(() => {
        for (const spec of this.specs.values()) {
          const cutoff = now - spec.maxAgeMs;
          const gone = this.stmt(
            'SELECT coalesce(sum(length(payload)), 0) AS size FROM messages WHERE stream = ? AND stored_at < ?',
          ).get(spec.name, cutoff) as { size: number };
          if (gone.size === 0) continue;
          this.stmt('DELETE FROM messages WHERE stream = ? AND stored_at < ?').run(spec.name, cutoff);
          this.stmt('UPDATE streams SET bytes = max(0, bytes - ?) WHERE name = ?').run(gone.size, spec.name);
        }
        for (const spec of this.specs.values())
          this.stmt('DELETE FROM msg_ids WHERE stream = ? AND stored_at < ?').run(
            spec.name,
            now - spec.duplicateWindowMs,
          );
        this.db.exec(
          'DELETE FROM pending WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.stream = pending.stream AND m.seq = pending.seq)',
        );
      })
      .immediate();
  }

  /** Reads stored messages (e.g. to inspect the dead-letter stream), oldest first. */
  read(stream: string, options: { subject?: string; fromSeq?: number; limit?: number } = {}): StoredMessage[] {
    const rows = this.stmt(
      `SELECT stream, seq, subject, headers, payload, stored_at FROM messages
         WHERE stream = ? AND seq >= ? AND sp_match(?, subject) ORDER BY seq LIMIT ?`,
    ).all(
      stream,
      options.fromSeq ?? 0,
      JSON.stringify([options.subject ?? '>']),
      options.limit ?? 1000,
    ) as MessageRow[];
    return rows.map((row) => ({
      stream: row.stream,
      seq: row.seq,
      subject: row.subject,
      headers: JSON.parse(row.headers) as Record<string, string>,
      payload: new Uint8Array(row.payload),
      storedAt: row.stored_at,
    }));
  }

  close(): void {
    this.db.close();
  }
}

function toDelivery(row: MessageRow, deliveries: number): RawDelivery {
  return {
    subject: row.subject,
    payload: new Uint8Array(row.payload),
    headers: JSON.parse(row.headers) as Record<string, string>,
    stream: row.stream,
    streamSeq: row.seq,
    deliveries,
  };
}
