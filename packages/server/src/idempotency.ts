import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { AppError } from '@sealpost/access';
import type { IdempotencyStore } from '@sealpost/storage';

// The port and its adapters (memory, SQLite, MongoDB) live in @sealpost/storage, beside the other shared stores.
export type { IdempotencyStore } from '@sealpost/storage';
export { MemoryIdempotencyStore } from '@sealpost/storage';

/** Metadata key of a mutation's request id (a `request_id` field in the message works too). */
export const REQUEST_ID_METADATA_KEY = 'x-sealpost-request-id';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

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
   * Runs `mutation` once per (principal, method, request id) within the TTL, across every process sharing the
   * store: a retry gets the first response, also from another replica or after a restart. A duplicate arriving while
   * the first still runs waits for its response, then gives up with ABORTED `REQUEST_IN_PROGRESS`. Without a request
   * id the mutation simply runs. Failures are not remembered, so a retry runs again. Responses must be plain data
   * (they are kept as JSON).
   * Throws INVALID_ARGUMENT `REQUEST_ID_REUSED` when the id comes back with a different request.
   */
  run<T>(
    key: { principal: string; method: string; requestId: string | undefined },
    request: unknown,
    mutation: () => Promise<T>,
  ): Promise<T>;
}

export interface IdempotencyOptions {
  readonly store: IdempotencyStore;
  /** How long a response is remembered. */
  readonly ttlMs: number;
  /**
   * After this long an unfinished execution counts as crashed and a retry may run the mutation again (default 60 s).
   * Must be well above the longest mutation (its deadline and retry budget) plus clock skew between hosts.
   */
  readonly claimTtlMs?: number;
  /** How long a duplicate waits for an execution running elsewhere before REQUEST_IN_PROGRESS (default 5 s). */
  readonly waitMs?: number;
  /** Store failures after a mutation succeeded (its response is still returned); default: ignored. */
  readonly onStoreError?: (err: unknown) => void;
}

export const DEFAULT_CLAIM_TTL_MS = 60_000;
export const DEFAULT_IDEMPOTENCY_WAIT_MS = 5_000;

/**
 * Request-id idempotency over a store: the first caller claims the request id, runs the mutation and records its
 * response; concurrent duplicates in this process share that execution, duplicates elsewhere poll the store.
 */
export function createIdempotency(options: IdempotencyOptions): Idempotency {
  const claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
  const waitMs = options.waitMs ?? DEFAULT_IDEMPOTENCY_WAIT_MS;
  const inFlight = new Map<string, { fingerprint: string; promise: Promise<unknown> }>();
  const reused = (): AppError =>
    new AppError(
      'INVALID_ARGUMENT',
      'REQUEST_ID_REUSED',
      'field `request_id` was already used for a different request',
    );
  const inProgress = (): AppError =>
    new AppError(
      'ABORTED',
      'REQUEST_IN_PROGRESS',
      'a request with this `request_id` is still running; retry it in a few seconds',
    );

  async function execute<T>(storeKey: string, fingerprint: string, mutation: () => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + waitMs;
    for (let poll = 0; ; poll++) {
      const found = await options.store.claim(storeKey, { fingerprint, claimTtlMs });
      if (found.status === 'claimed') {
        let response: T;
        try {
          response = await mutation();
        } catch (err) {
          // Not remembered: the retry runs again. If the release fails too, the claim expires on its own.
          await options.store.release(found.claim).catch(options.onStoreError ?? (() => undefined));
          throw err;
        }
        // The mutation happened, so its caller gets the response even if recording it fails: the claim then
        // keeps retries out until it expires.
        await options.store
          .complete(found.claim, JSON.stringify({ response }), options.ttlMs)
          .catch(options.onStoreError ?? (() => undefined));
        return response;
      }
      if (found.fingerprint !== fingerprint) throw reused();
      if (found.status === 'completed') return (JSON.parse(found.response) as { response: T }).response;
      if (Date.now() >= giveUpAt) throw inProgress();
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 25 * 2 ** Math.min(poll, 4))));
    }
  }

  return {
    async run<T>(
      key: { principal: string; method: string; requestId: string | undefined },
      request: unknown,
      mutation: () => Promise<T>,
    ): Promise<T> {
      if (key.requestId === undefined) return mutation();
      const storeKey = storeKeyOf(key.principal, key.method, key.requestId);
      const fingerprint = requestFingerprint(request);
      const running = inFlight.get(storeKey);
      if (running) {
        if (running.fingerprint !== fingerprint) throw reused();
        return running.promise as Promise<T>;
      }
      // Registered before the first await, so a concurrent duplicate finds it instead of racing to the store.
      const promise = execute(storeKey, fingerprint, mutation);
      inFlight.set(storeKey, { fingerprint, promise });
      try {
        return await promise;
      } finally {
        inFlight.delete(storeKey);
      }
    },
  };
}

/**
 * The store key of a request id: a hash, so stores keep neither principal ids nor client-chosen ids. Length-prefixed
 * parts, so ("a:b", "c") and ("a", "b:c") never share a key.
 */
function storeKeyOf(principal: string, method: string, requestId: string): string {
  const parts = [principal, method, requestId].map((p) => `${p.length}:${p}`).join('|');
  return createHash('sha256').update(parts).digest('base64url');
}
