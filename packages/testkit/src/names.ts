import { randomBytes } from 'node:crypto';

const PREFIX = /^[A-Za-z0-9_-]{1,40}$/;
/** Names this package hands out; safe as NATS tokens, durable names, tenant ids and FerretDB database names. */
export const UNIQUE_NAME = /^[A-Za-z0-9_-]{1,63}$/;

// Time plus randomness: distinct across jest workers, test files (each gets a fresh module registry) and
// repeated runs against peers whose state survives between runs.
const RUN_ID = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
let counter = 0;

/**
 * A name unique to this run, e.g. `tenant_mbx3k2f0a1b2c3_1`, matching `/^[A-Za-z0-9_-]{1,63}$/` (FerretDB
 * caps database names at 63). Throws RangeError when the prefix is not 1–40 of [A-Za-z0-9_-].
 */
export function uniqueName(prefix: string): string {
  if (!PREFIX.test(prefix)) throw new RangeError('uniqueName prefix must be 1-40 of [A-Za-z0-9_-]');
  counter += 1;
  return `${prefix}_${RUN_ID}_${counter.toString(36)}`;
}
