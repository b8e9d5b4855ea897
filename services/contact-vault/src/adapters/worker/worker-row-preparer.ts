import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type {
  ImportRowPreparer,
  PrepareKeys,
  PrepareRequest,
  PreparedImportRow,
} from '../../ports/import-row-preparer';
import { unpackReply, type WireReply } from './prepare-wire';

type Results = readonly (PreparedImportRow | undefined)[];

/**
 * `ImportRowPreparer` on one worker thread, beside the main thread that looks up, dedupes and writes. Fail-safe: if the
 * worker cannot start, dies or errs, every pending and later call answers "not done here" and the import prepares
 * in its own thread, exactly as without a worker.
 */
export class WorkerRowPreparer implements ImportRowPreparer {
  private readonly pending = new Map<number, (results: Results) => void>();
  private nextId = 0;
  private worker: Worker | undefined;
  /**
   * Started by the first import, not with the service (loading it costs a share of a second of CPU, and most vaults
   * never import); until it says it is ready, batches are prepared in line rather than wait for it.
   */
  private state: 'idle' | 'starting' | 'ready' | 'gone' = 'idle';
  private readySignal: { promise: Promise<boolean>; settle: (ready: boolean) => void } | undefined;

  constructor(private readonly onError: (error: unknown) => void = () => undefined) {}

  /** Starts the worker if needed; resolves true once it takes batches, false if it failed (batches stay in line). */
  whenReady(): Promise<boolean> {
    this.running();
    return this.state === 'starting' ? this.readySignal!.promise : Promise.resolve(this.state === 'ready');
  }

  accepting(): boolean {
    return this.running() !== undefined;
  }

  prepareMany(requests: readonly PrepareRequest[], keys?: PrepareKeys): Promise<Results> {
    const worker = requests.length === 0 ? undefined : this.running();
    if (worker === undefined) return Promise.resolve(requests.map(() => undefined));
    const id = this.nextId++;
    return new Promise<Results>((resolve) => {
      this.pending.set(id, resolve);
      if (this.pending.size === 1) worker.ref();
      try {
        // Key objects are cloned into the worker (no key bytes are exported) and dropped there with the batch.
        worker.postMessage({ id, requests, keys });
      } catch (error) {
        // Not sent (a value that cannot be cloned): this batch is left to the caller.
        this.onError(error);
        this.pending.delete(id);
        resolve([]);
      }
    }).finally(() => {
      if (this.pending.size === 0) this.worker?.unref();
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.retire();
    await worker?.terminate();
  }

  private running(): Worker | undefined {
    if (this.state === 'idle') this.start();
    return this.state === 'ready' ? this.worker : undefined;
  }

  private start(): void {
    this.state = 'starting';
    let settle!: (ready: boolean) => void;
    this.readySignal = { promise: new Promise<boolean>((resolve) => (settle = resolve)), settle };
    // The same source runs as TypeScript (tsx, jest) or compiled JavaScript (the image): load the worker alike.
    const typescript = path.extname(__filename) === '.ts';
    let worker: Worker;
    try {
      worker = new Worker(path.join(__dirname, `prepare-worker${typescript ? '.ts' : '.js'}`), {
        execArgv: typescript ? ['--require', require.resolve('tsx/cjs')] : [],
      });
    } catch (error) {
      this.onError(error);
      this.retire();
      return;
    }
    worker.on('message', (message: { ready: true } | WireReply) => {
      if ('ready' in message) {
        if (this.state === 'starting') this.state = 'ready';
        this.readySignal?.settle(this.state === 'ready');
        return;
      }
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(unpackReply(message));
    });
    worker.on('error', (error) => {
      this.onError(error);
      this.retire();
    });
    // A reply that cannot be read would leave its batch waiting forever: give the worker up, as on an error.
    worker.on('messageerror', (error) => {
      this.onError(error);
      this.retire();
      void worker.terminate();
    });
    worker.on('exit', (code) => {
      // An exit nobody asked for (the worker gave up on a request it could not read, or was stopped): say so once.
      if (this.worker === worker) this.onError(new Error(`the import worker stopped (exit code ${code})`));
      this.retire();
    });
    // Idle, it must not keep the process alive.
    worker.unref();
    this.worker = worker;
  }

  /** The worker is gone: everything pending, and everything later, is left to the caller's own thread. */
  private retire(): void {
    this.state = 'gone';
    this.readySignal?.settle(false);
    this.worker = undefined;
    for (const resolve of this.pending.values()) resolve([]);
    this.pending.clear();
  }
}
