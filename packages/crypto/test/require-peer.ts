import { spawnSync } from 'node:child_process';

/**
 * Tiny stand-in for the testkit's peer helper (swap for it once @sealpost/testkit exports one): runs the
 * suite when the peer answers on TCP; otherwise under CI=true registers a failing test, and elsewhere
 * skips with a printed line naming the missing peer.
 */
export function describeWithPeer(peer: string, url: string, title: string, suite: () => void): void {
  const { hostname, port } = new URL(url);
  if (tcpReachable(hostname, Number(port))) {
    describe(title, suite);
    return;
  }
  if (process.env.CI === 'true') {
    describe(title, () => {
      it(`needs ${peer} at ${url}`, () => {
        throw new Error(`Peer ${peer} is not reachable at ${url}; CI=true, so a missing peer fails`);
      });
    });
    return;
  }
  console.log(`SKIPPED "${title}": peer ${peer} is not reachable at ${url}`);
  describe.skip(title, suite);
}

// Synchronous so the decision is made while jest collects tests (describe blocks cannot wait).
function tcpReachable(host: string, port: number): boolean {
  const script = `const s=require('node:net').connect(${port},${JSON.stringify(host)});s.setTimeout(1500);s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));s.on('timeout',()=>process.exit(1));`;
  return spawnSync(process.execPath, ['-e', script], { timeout: 3000 }).status === 0;
}
