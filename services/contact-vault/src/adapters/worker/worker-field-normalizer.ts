import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ContactFields } from '../../domain';
import type { FieldNormalizer, NormalizeRequest } from '../../ports/field-normalizer';

type Results = readonly (ContactFields | undefined)[];

/**
 * `FieldNormalizer` on one worker thread, beside the main thread that looks up, seals and writes. Fail-safe: if the
 * worker cannot start, dies or errs, every pending and later call answers "not done here" and the import normalises
 * in its own thread, exactly as without a worker.
 */
export class WorkerFieldNormalizer implements FieldNormalizer {
  private readonly pending = new Map<number, (results: Results) => void>();
  private nextId = 0;
  private worker: Worker | undefined;
  /** Started on the first import, not with the service (loading it costs a share of a second of CPU). */
  private state: 'idle' | 'running' | 'gone' = 'idle';

  constructor(private readonly onError: (error: unknown) => void = () => undefined) {}

  normalizeMany(requests: readonly NormalizeRequest[]): Promise<Results> {
    const worker = requests.length === 0 ? undefined : this.running();
    if (worker === undefined) return Promise.resolve(requests.map(() => undefined));
    const id = this.nextId++;
    return new Promise<Results>((resolve) => {
      this.pending.set(id, resolve);
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, requests });
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
    if (this.state !== 'idle') return this.worker;
    this.state = 'running';
    // The same source runs as TypeScript (tsx, jest) or compiled JavaScript (the image): load the worker alike.
    const typescript = path.extname(__filename) === '.ts';
    let worker: Worker;
    try {
      worker = new Worker(path.join(__dirname, `normalize-worker${typescript ? '.ts' : '.js'}`), {
        execArgv: typescript ? ['--require', require.resolve('tsx/cjs')] : [],
      });
    } catch (error) {
      this.onError(error);
      this.retire();
      return undefined;
    }
    worker.on('message', (message: { id: number; results: (ContactFields | null)[] }) => {
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(message.results.map((r) => r ?? undefined));
    });
    worker.on('error', (error) => {
      this.onError(error);
      this.retire();
    });
    worker.on('exit', () => this.retire());
    // Idle, it must not keep the process alive.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** The worker is gone: everything pending, and everything later, is left to the caller's own thread. */
  private retire(): void {
    this.state = 'gone';
    this.worker = undefined;
    for (const resolve of this.pending.values()) resolve([]);
    this.pending.clear();
  }
}
