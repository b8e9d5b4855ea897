import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tempDir, waitFor } from '@sealpost/testkit';
import { createEnvelope } from '../envelope';
import type { ReceivedEvent } from '../port';
import { eventSubject } from '../topology';
import { EmbeddedBus } from './embedded-bus';

const event = (aggregateId: string) =>
  createEnvelope({
    type: 'consent.confirmed',
    subject: eventSubject('consent', 't-wake', 'confirmed'),
    tenant: 't-wake',
    aggregateId,
    aggregateVersion: 1,
    payload: new TextEncoder().encode('x'),
  });

describe('EmbeddedBus', () => {
  it('acknowledges a publish before any consumer runs, and hands events published within the wake delay over together', async () => {
    const dir = tempDir('sealpost-embedded-wake-');
    // No polling: only the publishes' wake-up can start a fetch.
    const bus = EmbeddedBus.open(join(dir.path, 'bus.sqlite'), { wakeDelayMs: 300, pollIntervalMs: 60_000 });
    try {
      const consent = bus.forService('consent');
      const dispatch = bus.forService('dispatch');
      await consent.ensureStreams();
      const batches: string[][] = [];
      const sub = await dispatch.consumeBatches(
        { durable: 'wake-dispatch', domain: 'consent' },
        (events: readonly ReceivedEvent[]) => {
          batches.push(events.map((e) => e.aggregateId));
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 100)); // its first (empty) fetch is done; it waits
      for (const id of ['a', 'b', 'c']) {
        await consent.publish(event(id));
        expect(batches).toEqual([]);
      }
      await waitFor('the batch', () => batches.length > 0);
      expect(batches).toEqual([['a', 'b', 'c']]);
      await sub.stop();
    } finally {
      await bus.close();
      dir.cleanup();
    }
  });

  it('checkpoints its WAL from a worker unless told not to', async () => {
    const dir = tempDir('sealpost-embedded-checkpoint-');
    const inWorker = EmbeddedBus.open(join(dir.path, 'a.sqlite'));
    const inCommits = EmbeddedBus.open(join(dir.path, 'b.sqlite'), { checkpointInWorker: false });
    try {
      expect(inWorker.store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      expect(inCommits.store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    } finally {
      await inWorker.close();
      await inCommits.close();
      dir.cleanup();
    }
  });

  it('never keeps a process alive: one that does not close its bus still exits', async () => {
    const dir = tempDir('sealpost-embedded-exit-');
    try {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(__dirname, '../../test/fixtures/unclosed-bus-child.ts')],
        { env: { ...process.env, SEALPOST_BUS_FILE: join(dir.path, 'bus.sqlite') }, stdio: 'ignore' },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const timeout = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 15_000));
      const outcome = await Promise.race([exited, timeout]);
      if (outcome === 'still running') child.kill('SIGKILL');
      expect(outcome).toBe(0);
    } finally {
      dir.cleanup();
    }
  }, 30_000);

  it('keeps a process alive while it closes: work awaiting close() still runs', async () => {
    const dir = tempDir('sealpost-embedded-close-');
    try {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(__dirname, '../../test/fixtures/close-bus-child.ts')],
        {
          env: { ...process.env, SEALPOST_BUS_FILE: join(dir.path, 'bus.sqlite') },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect({ code, stdout }).toEqual({ code: 0, stdout: 'closed\n' });
    } finally {
      dir.cleanup();
    }
  }, 30_000);
});
