/**
 * WAL checkpoints of a SQLite file, run by a worker thread on its own connection instead of inside commits.
 *
 * SQLite checkpoints in the commit that takes the WAL past 1,000 pages: on the event loop, inside whichever
 * write crossed the line. That commit then copies the pages into the database file and fsyncs it — 5 to 40 ms on
 * the machines measured — and whoever waits for that write pays all of it: a publisher waiting for its ack (a
 * reveal, whose answer waits for the audit event's ack), or a bulk import, which stalls on every such commit
 * while it could be preparing its next batch. Here the main connection's
 * auto-checkpoint is off while a worker runs PASSIVE checkpoints, which never block writers or readers. Commits
 * keep synchronous=FULL: a commit is durable once its WAL frames are fsynced, checkpointed or not.
 *
 * Fail-safe: if the worker cannot start or dies, the main connection's auto-checkpoint is turned back on, so the
 * WAL never grows without bound.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** SQLite's default auto-checkpoint threshold (pages), restored when the worker is gone. */
const AUTO_CHECKPOINT_PAGES = 1000;

// Plain CommonJS run with `eval`: no build step for a worker file, and the driver is the one the caller resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: workerData.busyTimeoutMs });
db.pragma('synchronous = FULL');
let timer;
let stopped = false;
let previous = { log: 0, checkpointed: 0 };
const tick = () => {
  timer = undefined;
  if (stopped) return;
  let copied = 0;
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (result !== undefined && result.log >= 0) {
      // Counts are of the WAL as it is now; a smaller log means a writer restarted it since the last look.
      copied = result.log >= previous.log ? result.checkpointed - previous.checkpointed : result.checkpointed;
      previous = { log: result.log, checkpointed: result.checkpointed };
      if (copied > 0) parentPort.postMessage({ kind: 'checkpointed', pages: copied });
    }
  } catch (error) {
    parentPort.postMessage({ kind: 'error', code: String((error && error.code) || (error && error.name) || 'error') });
  }
  // A big pass means writes are streaming in: look again at once rather than let the WAL grow for an interval.
  timer = copied >= workerData.minPages ? { immediate: setImmediate(tick) } : { timeout: setTimeout(tick, workerData.intervalMs) };
};
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  stopped = true;
  if (timer !== undefined) { clearTimeout(timer.timeout); clearImmediate(timer.immediate); }
  try { db.close(); } finally { parentPort.close(); }
});
tick();
`;

export interface WalCheckpointerOptions {
  /** How often the worker looks at the WAL when the last look found little to do (default 100 ms). */
  readonly intervalMs?: number;
  /** Pages copied in one pass from which the worker goes again at once instead of after the interval (default 64). */
  readonly minPages?: number;
  readonly onError?: (error: unknown) => void;
}

export class WalCheckpointer {
  private stopping: Promise<void> | undefined;
  private fallbackApplied = false;
  private exited = false;
  private checkpoints = 0;

  private constructor(
    private readonly db: Database.Database,
    private readonly worker: Worker,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Starts checkpointing `file` (the file `db` has open, in WAL mode) from a worker thread. */
  static start(db: Database.Database, file: string, options: WalCheckpointerOptions = {}): WalCheckpointer {
    const onError = options.onError ?? (() => undefined);
    db.pragma('wal_autocheckpoint = 0');
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        // None of the process's preloads (a TypeScript loader, telemetry registration, profilers): plain JS only.
        execArgv: [],
        workerData: {
          driver: require.resolve('better-sqlite3'),
          file,
          intervalMs: options.intervalMs ?? 100,
          minPages: options.minPages ?? 64,
          busyTimeoutMs: 5000,
        },
      });
    } catch (error) {
      db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
      throw error;
    }
    const checkpointer = new WalCheckpointer(db, worker, onError);
    worker.on('message', (message: { kind: string; pages?: number; code?: string }) => {
      if (message.kind === 'checkpointed') checkpointer.checkpoints += message.pages ?? 0;
      else if (message.kind === 'error')
        onError(Object.assign(new Error('WAL checkpoint failed'), { code: message.code }));
    });
    worker.on('error', (error) => {
      onError(error);
      checkpointer.fallBack();
    });
    worker.on('exit', () => {
      checkpointer.exited = true;
      checkpointer.fallBack();
    });
    // The worker must never keep the process alive on its own (after the listeners: a 'message' listener refs it).
    worker.unref();
    return checkpointer;
  }

  /** WAL pages the worker has copied into the database file so far (reported asynchronously). */
  get pagesCheckpointed(): number {
    return this.checkpoints;
  }

  /** Whether the main connection checkpoints again by itself (the worker is gone). */
  get fellBack(): boolean {
    return this.fallbackApplied;
  }

  /** Stops the worker (its connection closes); call before closing the main connection. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      this.worker.once('exit', () => resolve());
      // Referenced again while it winds down: a caller awaiting this with nothing else pending must not see its
      // process end mid-await (its remaining work — flushing telemetry, say — would never run).
      this.worker.ref();
      this.worker.postMessage('stop');
      // A worker stuck in a long checkpoint is not waited for beyond this.
      setTimeout(() => void this.worker.terminate(), 5000).unref();
    });
    return this.stopping;
  }

  /** The worker is gone: SQLite's own checkpointing takes over again. */
  private fallBack(): void {
    if (this.fallbackApplied) return;
    this.fallbackApplied = true;
    if (!this.db.open) return;
    try {
      this.db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
    } catch (error) {
      this.onError(error);
    }
  }
}
