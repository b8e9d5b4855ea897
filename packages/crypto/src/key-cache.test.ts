import { KmsUnavailableError } from './errors';
import { KeyCache } from './key-cache';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('KeyCache', () => {
  it('serves from cache until maxAgeMs, then loads again', async () => {
    const time = clock();
    const cache = new KeyCache<string>({ maxAgeMs: 60_000, maxUses: 1_000, now: time.now });
    let loads = 0;
    const load = async () => `key-${++loads}`;
    expect(await cache.get('k', load)).toBe('key-1');
    time.advance(59_999);
    expect(await cache.get('k', load)).toBe('key-1');
    time.advance(1);
    expect(await cache.get('k', load)).toBe('key-2');
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, loads: 2, expiredByAge: 1, expiredByUses: 0 });
  });

  it('serves at most maxUses times per load (the load counts as one use)', async () => {
    const cache = new KeyCache<string>({ maxAgeMs: 60_000, maxUses: 3 });
    let loads = 0;
    const load = async () => `key-${++loads}`;
    const seen: string[] = [];
    for (let i = 0; i < 7; i += 1) seen.push(await cache.get('k', load));
    expect(seen).toEqual(['key-1', 'key-1', 'key-1', 'key-2', 'key-2', 'key-2', 'key-3']);
    expect(cache.stats()).toMatchObject({ hits: 4, misses: 3, loads: 3, expiredByUses: 2 });
  });

  it('takes several uses at once only when that many are left, and counts them all', async () => {
    const cache = new KeyCache<string>({ maxAgeMs: 60_000, maxUses: 10 });
    let loads = 0;
    const load = async () => `key-${++loads}`;
    expect(await cache.get('k', load)).toBe('key-1'); // 1 use
    expect(cache.getCached('k', 7)).toBe('key-1'); // 8
    expect(cache.getCached('k', 3)).toBeUndefined(); // 11 > 10: nothing taken, the entry stays
    expect(cache.getCached('k', 2)).toBe('key-1'); // 10
    expect(cache.getCached('k')).toBeUndefined();
    expect(await cache.get('k', load)).toBe('key-2');
    expect(cache.stats()).toMatchObject({ loads: 2, expiredByUses: 1 });
  });

  it('makes one load for concurrent misses of one id', async () => {
    const cache = new KeyCache<string>({ maxAgeMs: 60_000, maxUses: 1_000 });
    let loads = 0;
    const load = async () => {
      loads += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return 'key';
    };
    const values = await Promise.all(Array.from({ length: 20 }, () => cache.get('k', load)));
    expect(values).toEqual(Array(20).fill('key'));
    expect(loads).toBe(1);
  });

  it('caches nothing when a load fails, and survives an outage only while the entry is fresh', async () => {
    const time = clock();
    const cache = new KeyCache<string>({ maxAgeMs: 1_000, maxUses: 1_000, now: time.now });
    let up = true;
    const load = async () => {
      if (!up) throw new KmsUnavailableError('unreachable');
      return 'key';
    };
    expect(await cache.get('k', load)).toBe('key');
    up = false;
    time.advance(999);
    expect(await cache.get('k', load)).toBe('key');
    time.advance(1);
    await expect(cache.get('k', load)).rejects.toMatchObject({ code: 'KMS_UNAVAILABLE', reason: 'unreachable' });
    await expect(cache.get('k', load)).rejects.toBeInstanceOf(KmsUnavailableError);
    expect(cache.stats()).toMatchObject({ loadFailures: 2, size: 0 });
    up = true;
    expect(await cache.get('k', load)).toBe('key');
  });

  it('keeps at most maxEntries, dropping the oldest', async () => {
    const cache = new KeyCache<number>({ maxAgeMs: 60_000, maxUses: 1_000, maxEntries: 2 });
    let loads = 0;
    const load = async () => ++loads;
    await cache.get('a', load);
    await cache.get('b', load);
    await cache.get('c', load);
    expect(cache.stats().size).toBe(2);
    expect(await cache.get('a', load)).toBe(4);
  });

  it('refuses unbounded settings', () => {
    expect(() => new KeyCache({ maxAgeMs: 0, maxUses: 10 })).toThrow(RangeError);
    expect(() => new KeyCache({ maxAgeMs: 10, maxUses: 0 })).toThrow(RangeError);
    expect(() => new KeyCache({ maxAgeMs: 10, maxUses: Infinity })).toThrow(RangeError);
  });
});
