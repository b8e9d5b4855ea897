import { randomUUID } from 'node:crypto';
import { type Collection, type Db, MongoServerError } from 'mongodb';
import { StorageError } from './errors';
import {
  checkClaimArgs,
  checkTtl,
  type IdempotencyClaim,
  type IdempotencyClaimOptions,
  type IdempotencyClaimResult,
  type IdempotencyStore,
  type IdempotencyStoreOptions,
} from './idempotency-store';
import { DEFAULT_PURGE_EVERY_MS, PurgeSchedule } from './purge-schedule';

/** One claim of a key: `_id` is `<key>#<attempt>`, so two callers claiming the same attempt collide on insert. */
interface AttemptDoc {
  _id: string;
  key: string;
  attempt: number;
  token: string;
  fingerprint: string;
  state: 'running' | 'completed' | 'released';
  response?: string;
  claimExpiresAt: number;
  /** When the document may be deleted: the claim's expiry while running, the end of retention once completed. */
  expiresAt: number;
}

export interface MongoIdempotencyStoreOptions extends IdempotencyStoreOptions {
  /** Collection name (default `idempotency`). */
  readonly collection?: string;
}

// Collisions only happen between callers that all saw the key free; after one, the key is claimed or running.
const MAX_ATTEMPTS = 20;

/**
 * IdempotencyStore over a MongoDB collection: one document per claim of a key, the newest attempt deciding.
 *
 * Why not one document per key, claimed by `updateOne({_id, state: 'released'…}, {$set: …})`: FerretDB v1 (the CI
 * server) applies updates by reading and writing in separate steps, so two replicas could both take over a crashed
 * claim (the same trap `MongoLeaseStore` documents). A new claim therefore always inserts the next attempt, which
 * is atomic everywhere; a document is only ever updated by the claim that inserted it. FerretDB v1 has no TTL
 * indexes either, so expired documents are purged explicitly.
 */
export class MongoIdempotencyStore implements IdempotencyStore {
  private readonly attempts: Collection<AttemptDoc>;
  private readonly now: () => number;
  private readonly purges: PurgeSchedule;
  private indexed: Promise<unknown> | undefined;

  constructor(db: Db, options: MongoIdempotencyStoreOptions = {}) {
    this.attempts = db.collection<AttemptDoc>(options.collection ?? 'idempotency');
    this.now = options.now ?? Date.now;
    this.purges = new PurgeSchedule(options.purgeEveryMs ?? DEFAULT_PURGE_EVERY_MS, this.now());
  }

  async claim(key: string, options: IdempotencyClaimOptions): Promise<IdempotencyClaimResult> {
    checkClaimArgs(key, options);
    await this.ensureIndexes();
    if (this.purges.due(this.now())) await this.purgeExpired();
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const newest = await this.attempts.find({ key }).sort({ attempt: -1 }).limit(1).next();
      const now = this.now();
      if (newest && newest.expiresAt > now) {
        if (newest.state === 'completed') {
          return { status: 'completed', fingerprint: newest.fingerprint, response: newest.response ?? '' };
        }
        if (newest.state === 'running') {
          return { status: 'running', fingerprint: newest.fingerprint, claimExpiresAt: newest.claimExpiresAt };
        }
      }
      const attempt = (newest?.attempt ?? 0) + 1;
      const claimExpiresAt = now + options.claimTtlMs;
      const doc: AttemptDoc = {
        _id: `${key}#${attempt}`,
        key,
        attempt,
        token: randomUUID(),
        fingerprint: options.fingerprint,
        state: 'running',
        claimExpiresAt,
        expiresAt: claimExpiresAt,
      };
      try {
        await this.attempts.insertOne(doc);
      } catch (err) {
        if (err instanceof MongoServerError && err.code === 11000) continue; // another caller claimed it first
        throw err;
      }
      if (await this.supersededAfter(key, attempt)) {
        // Our attempt number had been purged and reused meanwhile: the key has moved on without us.
        await this.attempts.updateOne({ _id: doc._id, token: doc.token }, { $set: { state: 'released' } });
        continue;
      }
      return { status: 'claimed', claim: { key, token: `${attempt}:${doc.token}` } };
    }
    throw new StorageError('STORAGE_CONTENDED', `idempotency claim collided ${MAX_ATTEMPTS} times; retry`);
  }

  async complete(claim: IdempotencyClaim, response: string, ttlMs: number): Promise<boolean> {
    checkTtl('ttl', ttlMs);
    const ref = refOf(claim);
    if (!ref || (await this.supersededAfter(claim.key, ref.attempt))) return false;
    const result = await this.attempts.updateOne(
      { _id: ref.id, token: ref.token, state: 'running' },
      { $set: { state: 'completed', response, expiresAt: this.now() + ttlMs } },
    );
    return result.matchedCount === 1;
  }

  async release(claim: IdempotencyClaim): Promise<void> {
    const ref = refOf(claim);
    if (!ref) return;
    // Kept until its claim would have expired, so the next claim continues the attempt numbers after it.
    await this.attempts.updateOne({ _id: ref.id, token: ref.token, state: 'running' }, { $set: { state: 'released' } });
  }

  async purgeExpired(): Promise<number> {
    await this.ensureIndexes();
    return (await this.attempts.deleteMany({ expiresAt: { $lte: this.now() } })).deletedCount;
  }

  private async supersededAfter(key: string, attempt: number): Promise<boolean> {
    return (await this.attempts.countDocuments({ key, attempt: { $gt: attempt } }, { limit: 1 })) > 0;
  }

  private ensureIndexes(): Promise<unknown> {
    this.indexed ??= (async () => {
      await this.attempts.createIndex({ key: 1, attempt: -1 }, { name: 'key_attempt' });
      await this.attempts.createIndex({ expiresAt: 1 }, { name: 'expires_at' });
    })().catch((err: unknown) => {
      this.indexed = undefined; // retried by the next call
      throw err;
    });
    return this.indexed;
  }
}

function refOf(claim: IdempotencyClaim): { id: string; attempt: number; token: string } | undefined {
  const sep = claim.token.indexOf(':');
  const attempt = Number(claim.token.slice(0, sep));
  if (sep < 1 || !Number.isSafeInteger(attempt)) return undefined;
  return { id: `${claim.key}#${attempt}`, attempt, token: claim.token.slice(sep + 1) };
}
