import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { mongoHostsOf } from './mongo/connect-mongo';

// Test-only peer lookup. TODO(testkit): replace with the testkit's peer helper once it exists; it is kept tiny
// and separate so the swap touches one import.

export type MongoPeer =
  | { readonly present: true; readonly url: string; readonly source: string }
  | { readonly present: false; readonly reason: string };

let cached: MongoPeer | undefined;

/**
 * The MongoDB-wire test server: env SEALPOST_TEST_MONGO_URL, else `.peers/peers.json` → `mongo.url` at the repo
 * root; present only if its first host accepts a TCP connection (checked synchronously, for describe time).
 */
export function findMongoTestPeer(): MongoPeer {
  cached ??= lookUp();
  return cached;
}

function lookUp(): MongoPeer {
  const fromEnv = process.env['SEALPOST_TEST_MONGO_URL'];
  let url: string | undefined;
  let source: string;
  if (fromEnv) {
    url = fromEnv;
    source = 'SEALPOST_TEST_MONGO_URL';
  } else {
    const file = path.join(repoRoot(), '.peers', 'peers.json');
    source = file;
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { mongo?: { url?: unknown } };
      if (typeof parsed.mongo?.url === 'string') url = parsed.mongo.url;
    } catch {
      return { present: false, reason: `no SEALPOST_TEST_MONGO_URL and no readable ${file}` };
    }
    if (!url) return { present: false, reason: `${file} has no mongo.url` };
  }
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

function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}
