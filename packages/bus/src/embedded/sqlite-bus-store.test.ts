import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NoStreamError, StreamFullError } from '../errors';
import { streamSpec } from '../stream-config';
import { SqliteBusStore } from './sqlite-bus-store';

const T0 = 1_800_000_000_000;
let dir: string;
let file: string;
let store: SqliteBusStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-busstore-'));
  file = join(dir, 'bus.sqlite');
  store = new SqliteBusStore(file);
  store.upsertStream(streamSpec('vault'));
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const bytes = (n: number) => new Uint8Array(n);
const request = {
  stream: 'SEALPOST_VAULT',
  durable: 'd',
  filters: ['sealpost.vault.>'],
  batch: 10,
  maxAckPending: 100,
  ackWaitMs: 1000,
};

describe('SqliteBusStore', () => {
  it('runs in WAL mode with synchronous=FULL', () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('deduplicates a message id within the window only', () => {
    const first = store.append('sealpost.vault.t.x', bytes(1), {}, 'm1', T0);
    expect(store.append('sealpost.vault.t.x', bytes(1), {}, 'm1', T0 + 119_000)).toEqual({ ...first, duplicate: true });
    const later = store.append('sealpost.vault.t.x', bytes(1), {}, 'm1', T0 + 121_000);
    expect(later).toEqual({ stream: 'SEALPOST_VAULT', seq: first.seq + 1, duplicate: false });
  });

  it('refuses subjects no stream stores', () => {
    expect(() => store.append('sealpost.consent.t.x', bytes(1), {}, 'm', T0)).toThrow(NoStreamError);
  });

  it('discards new messages on a full discard-new stream and old ones otherwise', () => {
    store.upsertStream({ ...streamSpec('audit'), maxBytes: 10 });
    store.append('sealpost.audit.vault.t.reveal', bytes(6), {}, 'a1', T0);
    expect(() => store.append('sealpost.audit.vault.t.reveal', bytes(6), {}, 'a2', T0)).toThrow(StreamFullError);
    store.upsertStream({ ...streamSpec('vault'), maxBytes: 10 });
    store.append('sealpost.vault.t.x', bytes(6), {}, 'v1', T0);
    store.append('sealpost.vault.t.x', bytes(6), {}, 'v2', T0);
    expect(store.read('SEALPOST_VAULT').map((m) => m.seq)).toEqual([2]);
  });

  it('redelivers after ack wait with a growing delivery count, and not after ack', () => {
    store.upsertConsumer('SEALPOST_VAULT', 'd', ['sealpost.vault.>']);
    store.append('sealpost.vault.t.x', bytes(1), {}, 'm1', T0);
    store.append('sealpost.vault.t.x', bytes(1), {}, 'm2', T0);
    expect(store.fetch(request, T0).map((d) => [d.streamSeq, d.deliveries])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(store.fetch(request, T0 + 999)).toEqual([]);
    store.ack('SEALPOST_VAULT', 'd', 1);
    expect(store.fetch(request, T0 + 1000).map((d) => [d.streamSeq, d.deliveries])).toEqual([[2, 2]]);
    store.retryAt('SEALPOST_VAULT', 'd', 2, T0 + 5000);
    expect(store.nextDueAt('SEALPOST_VAULT', 'd')).toBe(T0 + 5000);
  });

  it('keeps a durable position across reopen and skips subjects outside its filter', () => {
    store.upsertConsumer('SEALPOST_VAULT', 'd', ['sealpost.vault.t1.>']);
    store.append('sealpost.vault.t2.x', bytes(1), {}, 'm1', T0);
    store.append('sealpost.vault.t1.x', bytes(1), {}, 'm2', T0);
    const [d] = store.fetch(request, T0);
    store.ack('SEALPOST_VAULT', 'd', d!.streamSeq);
    store.close();
    store = new SqliteBusStore(file);
    store.append('sealpost.vault.t1.x', bytes(1), {}, 'm3', T0);
    expect(store.fetch({ ...request, filters: ['sealpost.vault.t1.>'] }, T0).map((x) => x.streamSeq)).toEqual([3]);
  });

  it('stops handing out new messages at maxAckPending', () => {
    store.upsertConsumer('SEALPOST_VAULT', 'd', ['sealpost.vault.>']);
    for (let i = 0; i < 5; i++) store.append('sealpost.vault.t.x', bytes(1), {}, `m${i}`, T0);
    expect(store.fetch({ ...request, maxAckPending: 3 }, T0)).toHaveLength(3);
    expect(store.fetch({ ...request, maxAckPending: 3 }, T0)).toHaveLength(0);
  });

  it('prunes messages past max age and their pending deliveries', () => {
    store.upsertConsumer('SEALPOST_VAULT', 'd', ['sealpost.vault.>']);
    store.append('sealpost.vault.t.x', bytes(1), {}, 'old', T0);
    store.fetch(request, T0);
    const maxAge = streamSpec('vault').maxAgeMs;
    store.append('sealpost.vault.t.x', bytes(1), {}, 'new', T0 + maxAge);
    store.prune(T0 + maxAge + 1);
    expect(store.read('SEALPOST_VAULT').map((m) => m.seq)).toEqual([2]);
    expect(store.fetch(request, T0 + maxAge + 2000).map((d) => d.streamSeq)).toEqual([2]);
  });

  it('a whole-stream filter and a narrower one hand out the same matching messages; ackMany settles a page', () => {
    for (const [i, subject] of ['sealpost.vault.a.x', 'sealpost.vault.b.x', 'sealpost.vault.a.y'].entries()) {
      store.append(subject, bytes(1), {}, `m${i}`, T0);
    }
    store.upsertConsumer('SEALPOST_VAULT', 'whole', ['sealpost.vault.>']);
    store.upsertConsumer('SEALPOST_VAULT', 'narrow', ['sealpost.vault.a.>']);
    const whole = store.fetch({ ...request, durable: 'whole' }, T0);
    expect(whole.map((d) => [d.streamSeq, d.deliveries])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    const narrow = store.fetch({ ...request, durable: 'narrow', filters: ['sealpost.vault.a.>'] }, T0);
    expect(narrow.map((d) => d.subject)).toEqual(['sealpost.vault.a.x', 'sealpost.vault.a.y']);
    // Pending until acked: nothing new, and after the ack wait only what was not acked comes back.
    store.ackMany('SEALPOST_VAULT', 'whole', [1, 3]);
    store.ackMany('SEALPOST_VAULT', 'whole', []);
    expect(store.fetch({ ...request, durable: 'whole' }, T0 + 1)).toEqual([]);
    expect(store.fetch({ ...request, durable: 'whole' }, T0 + 1001).map((d) => [d.streamSeq, d.deliveries])).toEqual([
      [2, 2],
    ]);
  });
});
