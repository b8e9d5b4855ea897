/**
 * Signed tree heads: sign {logId, treeSize, rootHash, timestamp} (the canonical payload of @sealpost/audit-format's
 * tree-head.ts) as a compact JWS, store it, write it to the witness, and publish it. `TreeHeadSchedule` does so every
 * N entries and every T ms, also when idle (a fresh timestamp proves the log was live and unchanged). Checking a
 * signed head is `verifyTreeHeadJws` of @sealpost/audit-format.
 */
import { type TreeHead, encodeTreeHeadPayload } from '@sealpost/audit-format';
import type { AuditLogStore, StoredTreeHead } from '../ports/audit-log-store';
import type { TreeHeadSigner } from '../ports/tree-head-signer';
import type { TreeHeadWitness } from '../ports/witness';
import type { AuditMetrics } from './audit-metrics';

/** Publishes a signed head as `TreeHeadSigned` on `sealpost.treehead.<logId>.signed` (see service.ts). */
export type TreeHeadPublisher = (head: StoredTreeHead) => Promise<void>;

export interface SignTreeHeadDeps {
  readonly store: AuditLogStore;
  readonly signer: TreeHeadSigner;
  readonly witness: TreeHeadWitness;
  readonly logId: string;
  readonly publish?: TreeHeadPublisher;
  readonly now?: () => number;
  readonly metrics?: AuditMetrics;
}

/** Signs the current head; stores it, then witnesses it, then publishes it. Returns the stored head. */
export async function signTreeHead(deps: SignTreeHeadDeps): Promise<StoredTreeHead> {
  const head = await deps.store.readHead();
  const treeHead: TreeHead = {
    logId: deps.logId,
    treeSize: head.size,
    rootHash: head.root.toString('hex'),
    timestamp: (deps.now ?? Date.now)(),
  };
  const jws = await deps.signer.sign(encodeTreeHeadPayload(treeHead));
  const stored: StoredTreeHead = { ...treeHead, jws, kid: deps.signer.kid };
  await deps.store.putTreeHead(stored);
  try {
    await deps.witness.record(stored);
  } catch (err) {
    deps.metrics?.treeHead(deps.witness.kind, 'failed');
    throw err;
  }
  deps.metrics?.treeHead(deps.witness.kind, 'ok');
  await deps.publish?.(stored);
  return stored;
}

export interface TreeHeadScheduleOptions extends SignTreeHeadDeps {
  /** Sign after this many new entries (default 1000). */
  readonly everyEntries?: number;
  /** Sign at least this often, even when idle (default 60 000 ms). */
  readonly everyMs?: number;
  readonly onError?: (err: unknown) => void;
}

/** Runs signTreeHead every N entries (`noteAppended`) and every T ms. Only the lease holder should run it. */
export class TreeHeadSchedule {
  private timer: NodeJS.Timeout | undefined;
  private sinceLast = 0;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: TreeHeadScheduleOptions) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.signNow(), this.opts.everyMs ?? 60_000);
    this.timer.unref();
  }

  /** Counts appended entries; signs once `everyEntries` accumulated. */
  noteAppended(count = 1): void {
    this.sinceLast += count;
    if (this.sinceLast >= (this.opts.everyEntries ?? 1000)) void this.signNow();
  }

  /** Signs now (serialised with other signings); errors go to onError. */
  signNow(): Promise<StoredTreeHead | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    this.sinceLast = 0;
    const next = this.running.then(() =>
      signTreeHead(this.opts).catch((err: unknown) => {
        this.opts.onError?.(err);
        return undefined;
      }),
    );
    this.running = next;
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
