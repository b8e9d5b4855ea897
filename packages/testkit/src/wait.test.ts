import { createServer, type Server } from 'node:net';
import { PeerTimeoutError, portOpen, waitFor, waitForPort } from './wait';

const listen = (server: Server, port = 0): Promise<number> =>
  new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

describe('waitForPort', () => {
  it('resolves once a server starts listening on the port', async () => {
    const port = await freePort();
    const server = createServer((socket) => socket.end());
    const started = Date.now();
    setTimeout(() => void listen(server, port), 300);
    try {
      await waitForPort('127.0.0.1', port, { timeoutMs: 5000, intervalMs: 50 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(await portOpen('127.0.0.1', port)).toBe(true);
    } finally {
      await close(server);
    }
  });

  it('fails with PeerTimeoutError naming the address when nothing listens', async () => {
    const port = await freePort();
    expect(await portOpen('127.0.0.1', port)).toBe(false);
    const error = await waitForPort('127.0.0.1', port, { timeoutMs: 300, intervalMs: 50 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerTimeoutError);
    expect((error as PeerTimeoutError).code).toBe('PEER_TIMEOUT');
    expect((error as Error).message).toBe(`127.0.0.1:${port} not ready after 300 ms`);
  });
});

describe('waitFor', () => {
  it('retries a failing check and returns its first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(
      'thing',
      () => {
        calls += 1;
        if (calls < 3) throw new Error('not yet');
        return calls === 3 ? undefined : 'ready';
      },
      { intervalMs: 10 },
    );
    expect(value).toBe('ready');
    expect(calls).toBe(4);
  });

  it('keeps the last failure as the cause on timeout', async () => {
    const cause = new Error('connection refused');
    const error = await waitFor('thing', () => Promise.reject(cause), { timeoutMs: 100, intervalMs: 20 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PeerTimeoutError);
    expect((error as Error).cause).toBe(cause);
  });
});
