import { connect } from 'node:net';

/** Thrown when a readiness wait runs out of time. */
export class PeerTimeoutError extends Error {
  readonly code = 'PEER_TIMEOUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeerTimeoutError';
  }
}

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  readonly intervalMs?: number;
}

/**
 * Polls `check` until it resolves to a truthy value and returns that value; a throwing check counts as
 * "not yet". Throws PeerTimeoutError (with the last failure as `cause`) when the time runs out.
 */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() + intervalMs > deadline) {
      throw new PeerTimeoutError(`${what} not ready after ${timeoutMs} ms`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves true when a TCP connection to host:port opens within `timeoutMs`, false otherwise. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Waits until host:port accepts TCP connections. Throws PeerTimeoutError. */
export async function waitForPort(host: string, port: number, options: WaitOptions = {}): Promise<void> {
  await waitFor(`${host}:${port}`, () => portOpen(host, port, Math.min(1000, options.timeoutMs ?? 1000)), options);
}
