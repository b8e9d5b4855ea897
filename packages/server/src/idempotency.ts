import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { AppError } from '@sealpost/access';

/** Metadata key of a mutation's request id (a `request_id` field in the message works too). */
export const REQUEST_ID_METADATA_KEY = 'x-sealpost-request-id';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** A remembered outcome of a mutation. */
export interface IdempotencyRecord {
  /** Hash of the request (without its request id): the same id with another request is refused. */
  readonly fingerprint: string;
  readonly response: unknown;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/**
 * Port: remembers (principal, method, request id) → response for a while. Adapters: in-memory LRU here;
 * SQLite/MongoDB adapters belong with the storage package.
 */
export interface IdempotencyStore {
  get(key: string): Promise<IdempotencyRecord | undefined>;
  put(key: string, record: IdempotencyRecord): Promise<void>;
}

/** In-memory LRU store (embedded mode, tests); bounded by entry count, entries expire by time. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, IdempotencyRecord>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  async get(key: string): Promise<IdempotencyRecord | undefined> {
    const record = this.entries.get(key);
    if (!record) return undefined;
    this.entries.delete(key);
    if (record.expiresAt <= this.now()) return undefined;
    this.entries.set(key, record); // most recently used goes last
    return record;
  }

  async put(key: string, record: IdempotencyRecord): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, record);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The request id of a mutation from metadata or the message (`requestId` / `request_id`); undefined when absent.
 * Throws INVALID_ARGUMENT `REQUEST_ID_INVALID` for a malformed id or two different ids.
 */
export function requestIdOf(metadata: grpc.Metadata, request: unknown): string | undefined {
  const fromMetadata = metadata.get(REQUEST_ID_METADATA_KEY);
  const r = typeof request === 'object' && request !== null ? (request as Record<string, unknown>) : {};
  const fromMessage = r['requestId'] ?? r['request_id'];
  const candidates = new Set<unknown>([
    ...fromMetadata,
    ...(fromMessage === undefined || fromMessage === '' ? [] : [fromMessage]),
  ]);
  if (candidates.size === 0) return undefined;
  const [id] = candidates;
  if (candidates.size > 1 || typeof id !== 'string' || !REQUEST_ID.test(id)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      'REQUEST_ID_INVALID',
      'field `request_id` must be one id of 8–128 characters [A-Za-z0-9._:-]',
    );
  }
  return id;
}

function canonical(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .filter((k) => k !== 'requestId' && k !== 'request_id')
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Stable hash of a request message, ignoring its request id field. */
export function requestFingerprint(request: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(request)) ?? 'undefined')
    .digest('base64url');
}

export interface Idempotency {
  /**
   * Runs `mutation` once per (principal, method, request id) within the TTL; a retry gets the first response.
   * Without a request id the mutation simply runs. Failures are not remembered, so a retry runs again.
   * Throws INVALID_ARGUMENT `REQUEST_ID_REUSED` when the id comes back with a different request.
   */
  run<T>(
    key: { principal: string; method: string; requestId: string | undefined },
    request: unknown,
    mutation: () => Promise<T>,
  ): Promise<T>;
}

/** Request-id idempotency over a store; concurrent duplicates in this process share one execution. */
export function createIdempotency(options: {
  store: IdempotencyStore;
  ttlMs: number;
  now?: () => number;
}): Idempotency {
  const now = options.now ?? Date.now;
  const inFlight = new Map<string, { fingerprint: string; promise: Promise<unknown> }>();
  return {
    async run<T>(
      key: { principal: string; method: string; requestId: string | undefined },
      request: unknown,
      mutation: () => Promise<T>,
    ): Promise<T> {
      if (key.requestId === undefined) return mutation();
      // Length-prefixed parts so ("a:b", "c") and ("a", "b:c") never share a key.
      const storeKey = [key.principal, key.method, key.requestId].map((p) => `${p.length}:${p}`).join('|');
      const fingerprint = requestFingerprint(request);
      const reused = (): AppError =>
        new AppError(
          'INVALID_ARGUMENT',
          'REQUEST_ID_REUSED',
          'field `request_id` was already used for a different request',
        );

      const running = inFlight.get(storeKey);
      if (running) {
        if (running.fingerprint !== fingerprint) throw reused();
        return running.promise as Promise<T>;
      }
      // Registered before the first await, so a concurrent duplicate finds it instead of racing the store read.
      const promise = (async () => {
        const stored = await options.store.get(storeKey);
        if (stored && stored.expiresAt > now()) {
          if (stored.fingerprint !== fingerprint) throw reused();
          return stored.response as T;
        }
        const response = await mutation();
        await options.store.put(storeKey, { fingerprint, response, expiresAt: now() + options.ttlMs });
        return response;
      })();
      inFlight.set(storeKey, { fingerprint, promise });
      try {
        return await promise;
      } finally {
        inFlight.delete(storeKey);
      }
    },
  };
}
