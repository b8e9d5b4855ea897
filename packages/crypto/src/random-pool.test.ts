import { RandomPool } from './random-pool';

describe('RandomPool', () => {
  it('never hands out the same bytes twice, across refills', () => {
    const pool = new RandomPool(64);
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i += 1) {
      const nonce = pool.fill(Buffer.alloc(12));
      const hex = nonce.toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
  });

  it('zeroes what it handed out, so the pool keeps only unused bytes', () => {
    const pool = new RandomPool(64);
    const key = pool.fill(Buffer.alloc(32));
    expect(key.equals(Buffer.alloc(32))).toBe(false);
    const held = (pool as unknown as { pool: Buffer }).pool;
    expect(held.subarray(0, 32).equals(Buffer.alloc(32))).toBe(true);
    expect(held.subarray(32).equals(Buffer.alloc(32))).toBe(false);
  });

  it('looks like CSPRNG output: every byte value appears, about evenly', () => {
    const pool = new RandomPool();
    const counts = new Array<number>(256).fill(0);
    const sample = pool.fill(Buffer.alloc(256 * 1024));
    for (const byte of sample) counts[byte]! += 1;
    // Expected 1,024 per value; a counter, a constant or a short cycle would be far off.
    expect(Math.min(...counts)).toBeGreaterThan(850);
    expect(Math.max(...counts)).toBeLessThan(1200);
    const small = Buffer.concat(Array.from({ length: 4096 }, () => pool.fill(Buffer.alloc(12))));
    const smallCounts = new Array<number>(256).fill(0);
    for (const byte of small) smallCounts[byte]! += 1;
    expect(Math.min(...smallCounts)).toBeGreaterThan(120);
    expect(Math.max(...smallCounts)).toBeLessThan(270);
  });
});
