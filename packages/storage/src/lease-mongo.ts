import { type Collection, type Db, MongoServerError } from 'mongodb';
import type { LeaseGrant, LeaseStore } from './lease';
import { checkLeaseArgs, type LeaseStoreOptions } from './lease-args';

/** One tenure ("epoch") of a lease: `_id` is `<name>:<token>`, so two contenders for one epoch collide on insert. */
interface EpochDoc {
  _id: string;
  name: string;
  token: number;
  holder: string;
  expiresAt: number;
}

// Old epochs are deleted, but only well behind the newest, so a very late contender still collides on _id.
const KEEP_EPOCHS = 16;

/**
 * LeaseStore over a MongoDB collection (default `leases`).
 *
 * Why epochs and not one document updated with findOneAndUpdate({$or: [{holder}, {expiresAt: {$lt: now}}]}):
 * FerretDB v1 (the CI server) evaluates findAndModify's filter and applies the update in two steps, so two
 * contenders can both take an expired lease (our contract test caught exactly that). An insert that collides on
 * `_id` is atomic everywhere, so each change of holder inserts the next epoch document; only the holder itself
 * ever updates its epoch (to renew or release), and every grant is checked against newer epochs.
 */
export class MongoLeaseStore implements LeaseStore {
  private readonly epochs: Collection<EpochDoc>;
  private readonly now: () => number;
  private indexed: Promise<unknown> | undefined;

  constructor(db: Db, options: LeaseStoreOptions & { collection?: string } = {}) {
    this.epochs = db.collection<EpochDoc>(options.collection ?? 'leases');
    this.now = options.now ?? Date.now;
  }

  async tryAcquire(name: string, holder: string, ttlMs: number): Promise<LeaseGrant | null> {
    checkLeaseArgs(name, holder, ttlMs);
    await this.ensureIndex();
    const now = this.now();
    const newest = await this.newest(name);
    const live = newest !== null && newest.expiresAt >= now;
    if (live && newest.holder !== holder) return null;
    if (live) {
      // Our own live lease: extend it in place, keeping the token (nobody else held it in between).
      return this.extend(newest, now + ttlMs);
    }
    const token = (newest?.token ?? 0) + 1;
    const epoch: EpochDoc = { _id: `${name}:${token}`, name, token, holder, expiresAt: now + ttlMs };
    try {
      await this.epochs.insertOne(epoch);
    } catch (err) {
      if (err instanceof MongoServerError && err.code === 11000) return null; // another contender won this epoch
      throw err;
    }
    if (await this.supersededAfter(name, token)) {
      // We were so late that the lease has moved on beyond our epoch: give ours up at once.
      await this.epochs.updateOne({ _id: epoch._id, holder }, { $set: { expiresAt: 0 } });
      return null;
    }
    await this.epochs.deleteMany({ name, token: { $lte: token - KEEP_EPOCHS } });
    return grantOf(epoch);
  }

  async renew(grant: LeaseGrant, ttlMs: number): Promise<LeaseGrant | null> {
    checkLeaseArgs(grant.name, grant.holder, ttlMs);
    const now = this.now();
    const current = await this.epochs.findOne({ _id: `${grant.name}:${grant.token}`, holder: grant.holder });
    // An expired lease counts as lost even if nobody took it yet: a contender may be inserting the next epoch now.
    if (current === null || current.expiresAt < now) return null;
    return this.extend(current, now + ttlMs);
  }

  async release(grant: LeaseGrant): Promise<void> {
    // Expire rather than delete: the newest epoch must stay so the next token continues from it.
    await this.epochs.updateOne(
      { _id: `${grant.name}:${grant.token}`, holder: grant.holder },
      { $set: { expiresAt: 0 } },
    );
  }

  private async extend(epoch: EpochDoc, expiresAt: number): Promise<LeaseGrant | null> {
    const result = await this.epochs.updateOne(
      { _id: epoch._id, holder: epoch.holder, expiresAt: { $gt: 0 } },
      { $set: { expiresAt } },
    );
    if (result.matchedCount !== 1 || (await this.supersededAfter(epoch.name, epoch.token))) return null;
    return grantOf({ ...epoch, expiresAt });
  }

  private async newest(name: string): Promise<EpochDoc | null> {
    return this.epochs.find({ name }).sort({ token: -1 }).limit(1).next();
  }

  private async supersededAfter(name: string, token: number): Promise<boolean> {
    return (await this.epochs.countDocuments({ name, token: { $gt: token } }, { limit: 1 })) > 0;
  }

  private ensureIndex(): Promise<unknown> {
    this.indexed ??= this.epochs.createIndex({ name: 1, token: -1 }, { name: 'name_token' }).catch((err: unknown) => {
      this.indexed = undefined; // retried by the next call
      throw err;
    });
    return this.indexed;
  }
}

function grantOf(doc: EpochDoc): LeaseGrant {
  return { name: doc.name, holder: doc.holder, token: doc.token, expiresAt: doc.expiresAt };
}
