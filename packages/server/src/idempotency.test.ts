import * as grpc from '@grpc/grpc-js';
import { createIdempotency, MemoryIdempotencyStore, requestFingerprint, requestIdOf } from './idempotency';

const key = (requestId: string | undefined, principal = 'op-1') => ({ principal, method: '/a.B/C', requestId });

describe('createIdempotency', () => {
  it('runs once per request id, per principal, and shares a concurrent duplicate', async () => {
    let runs = 0;
    const idem = createIdempotency({ store: new MemoryIdempotencyStore(), ttlMs: 60_000 });
    const mutation = async () => {
      await new Promise((r) => setTimeout(r, 20));
      return { n: ++runs };
    };
    const [a, b] = await Promise.all([
      idem.run(key('req-00000001'), { x: 1 }, mutation),
      idem.run(key('req-00000001'), { x: 1 }, mutation),
    ]);
    expect(a).toEqual({ n: 1 });
    expect(b).toEqual({ n: 1 });
    expect(await idem.run(key('req-00000001'), { x: 1 }, mutation)).toEqual({ n: 1 });
    expect(await idem.run(key('req-00000001', 'op-2'), { x: 1 }, mutation)).toEqual({ n: 2 });
    expect(await idem.run(key(undefined), { x: 1 }, mutation)).toEqual({ n: 3 });
    expect(await idem.run(key(undefined), { x: 1 }, mutation)).toEqual({ n: 4 });
  });

  it('does not remember failures, and expires after the TTL', async () => {
    let now = 0;
    let runs = 0;
    const idem = createIdempotency({ store: new MemoryIdempotencyStore({ now: () => now }), ttlMs: 100 });
    await expect(idem.run(key('req-00000002'), {}, async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(await idem.run(key('req-00000002'), {}, async () => ++runs)).toBe(1);
    now = 100;
    expect(await idem.run(key('req-00000002'), {}, async () => ++runs)).toBe(2);
  });

  it('refuses the same id with a different request, before running anything', async () => {
    const idem = createIdempotency({ store: new MemoryIdempotencyStore(), ttlMs: 60_000 });
    await idem.run(key('req-00000003'), { contact: 'a' }, async () => 1);
    const mutation = jest.fn(async () => 2);
    await expect(idem.run(key('req-00000003'), { contact: 'b' }, mutation)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      reason: 'REQUEST_ID_REUSED',
    });
    expect(mutation).not.toHaveBeenCalled();
  });
});

describe('requestIdOf / requestFingerprint', () => {
  it('takes the id from metadata or the message and refuses two different or malformed ids', () => {
    const md = new grpc.Metadata();
    expect(requestIdOf(md, {})).toBeUndefined();
    expect(requestIdOf(md, { requestId: 'abcdefgh-1' })).toBe('abcdefgh-1');
    md.set('x-sealpost-request-id', 'abcdefgh-1');
    expect(requestIdOf(md, { requestId: 'abcdefgh-1' })).toBe('abcdefgh-1');
    expect(() => requestIdOf(md, { requestId: 'abcdefgh-2' })).toThrow(
      expect.objectContaining({ reason: 'REQUEST_ID_INVALID' }),
    );
    expect(() => requestIdOf(new grpc.Metadata(), { request_id: 'short' })).toThrow(
      expect.objectContaining({ reason: 'REQUEST_ID_INVALID' }),
    );
  });

  it('ignores key order and the request id itself, but not values', () => {
    expect(requestFingerprint({ a: 1, b: [1, 2], requestId: 'x' })).toBe(
      requestFingerprint({ b: [1, 2], a: 1, requestId: 'y' }),
    );
    expect(requestFingerprint({ a: 1, b: [1, 2] })).not.toBe(requestFingerprint({ a: 1, b: [2, 1] }));
    expect(requestFingerprint({ d: new Uint8Array([1]) })).not.toBe(requestFingerprint({ d: new Uint8Array([2]) }));
  });
});
