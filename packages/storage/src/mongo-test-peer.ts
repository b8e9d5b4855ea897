import { spawnSync } from 'node:child_process';
import { loadPeers, peersFile } from '@sealpost/testkit';
import { mongoHostsOf } from './mongo/connect-mongo';

export type MongoPeer =
  | { readonly present: true; readonly url: string; readonly source: string }
  | { readonly present: false; readonly reason: string };

let cached: MongoPeer | undefined;

/**
 * The MongoDB-wire test server as @sealpost/testkit finds it (SEALPOST_TEST_MONGO_URL, or the peers file that
 * scripts/peers.sh writes); present only if its first host accepts a TCP connection (checked synchronously, for
 * describe time).
 */
export function findMongoTestPeer(): MongoPeer {
  cached ??= lookUp();
  return cached;
}

function lookUp(): MongoPeer {
  const source = process.env['SEALPOST_TEST_MONGO_URL'] ? 'SEALPOST_TEST_MONGO_URL' : peersFile();
  const url = loadPeers().mongo?.url;
  if (!url) return { present: false, reason: `no SEALPOST_TEST_MONGO_URL and no mongo.url in ${peersFile()}` };
  const hosts = mongoHostsOf(url);
  const first = hosts.split(',')[0] ?? '';
  const idx = first.lastIndexOf(':');
  const host = idx > 0 ? first.slice(0, idx) : first;
  const port = idx > 0 ? Number(first.slice(idx + 1)) : 27017;
  if (!reachable(host, port)) return { present: false, reason: `nothing answers at ${hosts} (from ${source})` };
  return { present: true, url, source };
}

function reachable(host: string, port: number): boolean {
  const probe =
    "const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});" +
    's.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1));setTimeout(()=>process.exit(1),1500);';
  const result = spawnSync(process.execPath, ['-e', probe, host, String(port)], { timeout: 3000, stdio: 'ignore' });
  return result.status === 0;
}
