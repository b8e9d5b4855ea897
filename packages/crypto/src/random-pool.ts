import { randomFillSync } from 'node:crypto';

/**
 * CSPRNG output drawn in blocks: one `randomFillSync` per 4 KiB instead of one per key or nonce. Each call costs
 * several microseconds whatever its size, and a contact write needs three draws (data key, two nonces), so the
 * calls alone were a tenth of a bulk import row.
 *
 * Every byte is handed out once and zeroed in the pool as it goes, so what the pool still holds is only bytes no
 * one has used yet (a heap dump taken later finds no key or nonce here). Never a counter, never derived: the bytes
 * are the CSPRNG's, as `randomBytes` would return them.
 */
export class RandomPool {
  private readonly pool: Buffer;
  private offset: number;

  constructor(size = 4096) {
    this.pool = Buffer.alloc(size);
    this.offset = size;
  }

  /** Fills `target` with fresh random bytes and returns it. */
  fill<T extends Uint8Array>(target: T): T {
    const length = target.byteLength;
    if (length > this.pool.length) return randomFillSync(target);
    if (this.offset + length > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const end = this.offset + length;
    target.set(this.pool.subarray(this.offset, end));
    this.pool.fill(0, this.offset, end);
    this.offset = end;
    return target;
  }
}

/** The pool the key and record code draws from (one per process). */
export const randomPool = new RandomPool();
