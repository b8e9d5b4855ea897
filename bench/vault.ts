/**
 * `pnpm bench vault`: the contact vault. Writes bench/results/vault.json. Goals (tracked, not asserted):
 *   - crypto core per contact (3 fields sealed in one AES-256-GCM record, data key wrapped by the KEK, 2 blind
 *     indexes) ≥ 0.8× a raw loop of the same AES-256-GCM and HMAC calls on the same bytes, same run
 *     (packages/crypto/bench/crypto-core.ts, in a process of its own);
 *   - import ≥ 10k contacts/s end to end over gRPC into SQLite with production durability (WAL, synchronous=FULL),
 *     through the real runner process (`pnpm start`) and the CLI's import client;
 *   - KMS calls ≤ 1 per 1,000 record operations with a warm cache;
 *   - reveal p99 < 5 ms including the audit acknowledgement (the audit event is durably accepted by the bus first).
 * FerretDB import throughput is reported when the mongo peer is up (no goal): batched like SQLite (insertMany of
 * claims, contacts and keys per batch), while the outbox relay removes published events with FerretDB v1's per-document
 * updates (tens of ms each) in the same server — a few hundred rows/s here. The import also checks the exact summary
 * of a CSV with duplicates and bad rows (the issue's 100k must-show at full size).
 *
 * Reveal is measured twice: through the embedded runner (SQLite bus, every publish fsynced before its ack, the
 * audit service appending in the same process) and through a standalone contact-vault process publishing to the
 * NATS JetStream peer (the production path; reported when the peer answers). Each figure names its bus and
 * durability.
 *
 * Knobs: BENCH_VAULT_IMPORT (default 100 000 rows; e.g. 20 000 while iterating), BENCH_VAULT_FERRET_IMPORT
 * (5 000), BENCH_VAULT_REVEALS (2 000), BENCH_VAULT_ONLY (comma list of crypto, import, reveal, ferret, nats;
 * default all — e.g. BENCH_VAULT_ONLY=reveal,nats; reveal without import seeds 200 contacts untimed),
 * BENCH_VAULT_NODE_ARGS (extra Node flags for the runner and the standalone vault, space-separated: e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--trace-gc`; the figures are then only good for finding where time goes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { vaultV1 } from '@sealpost/proto';
import { connectMongo } from '@sealpost/storage';
import { loadPeers, portOpen } from '@sealpost/testkit';
import { jetstreamManager } from '@nats-io/jetstream';
import { openDevTokenIssuer, writeDevTlsFiles } from '@sealpost/access';
import { NatsServiceBus, streamSpec } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import {
  IMPORT_ROWS_PER_MESSAGE,
  callMetadata,
  connectVault,
  importCsv,
  parseContactCsv,
  unaryCall,
  vaultConfig,
} from '@sealpost/cli';
// Test support of the CLI and the runner (not part of their packages' exports): the import test's CSV generator, and
// the runner process as its tests start it.
import { scaleCsv, type ExpectedSummary } from '../packages/cli/test/support/scale-csv';
import { freePort, startRunner as startRunnerProcess } from '../services/runner/test/support/runner-process';
import { ECHO_SERVICE } from './support/grpc-echo-server';

const ROOT = path.resolve(__dirname, '..');
const IMPORT_ROWS = Number(process.env.BENCH_VAULT_IMPORT ?? 100_000);
const FERRET_ROWS = Number(process.env.BENCH_VAULT_FERRET_IMPORT ?? 5_000);
const REVEALS = Number(process.env.BENCH_VAULT_REVEALS ?? 2_000);
const NODE_ARGS = (process.env.BENCH_VAULT_NODE_ARGS ?? '').split(' ').filter(Boolean);
const PARTS = ['crypto', 'import', 'reveal', 'ferret', 'nats'] as const;
const ONLY = new Set(
  (process.env.BENCH_VAULT_ONLY ?? PARTS.join(','))
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== ''),
);
for (const part of ONLY) {
  if (!(PARTS as readonly string[]).includes(part)) throw new Error(`BENCH_VAULT_ONLY: unknown part ${part}`);
}
/** Contacts imported (untimed) for the reveal measurements when the import itself is not measured. */
const SEED_ROWS = 200;
const TENANT = `bench-${Date.now().toString(36)}`;

interface Runner {
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** The embedded runner (what `pnpm start` runs) on a temp data directory and free ports, as the runner's tests start it. */
async function startRunner(extraEnv: Record<string, string>): Promise<Runner> {
  const runner = await startRunnerProcess(
    // The benchmark's operator reveals thousands of times; the default quota would stop it after 20.
    { SEALPOST_VAULT_REVEAL_QUOTA: '1000000/3600', ...extraEnv },
    { nodeArgs: NODE_ARGS },
  );
  return { dataDir: runner.dataDir, stop: () => runner.stopGracefully() };
}

/**
 * Starts the standalone contact-vault process (`services/contact-vault/src/main.ts`, what runs in production) in
 * embedded mode but with its bus on NATS JetStream, preparing what the runner would (dev TLS leaves for the vault
 * and the CLI, the dev token issuer, endpoints.json). The audit stream is created if the server lacks it.
 */
async function startVaultOnNats(natsUrl: string): Promise<Runner> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-bench-vault-nats-'));
  const ports = await Promise.all([freePort(), freePort()]);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SEALPOST_')));
  const env: Record<string, string> = {
    ...(clean as Record<string, string>),
    SEALPOST_DATA_DIR: dataDir,
    SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${ports[0]}`,
    SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${ports[1]}`,
    SEALPOST_VAULT_REVEAL_QUOTA: '1000000/3600',
    SEALPOST_BUS: 'nats',
    SEALPOST_NATS_URL: natsUrl,
  };
  const config = loadConfig('contact-vault', env);
  const devCa = path.dirname(config.tls.caFile);
  await writeDevTlsFiles({ dir: devCa, mode: config.mode, service: 'contact-vault', files: config.tls });
  const cliTls = await writeDevTlsFiles({
    dir: devCa,
    mode: config.mode,
    service: 'cli',
    usage: 'client',
    files: {
      caFile: config.tls.caFile,
      certFile: path.join(devCa, 'cli.pem'),
      keyFile: path.join(devCa, 'cli-key.pem'),
    },
  });
  if (config.auth.jwks.kind === 'file') {
    await openDevTokenIssuer({ dir: path.dirname(config.auth.jwks.file), mode: config.mode });
  }
  await ensureAuditStream(natsUrl);
  const child: ChildProcess = spawn(
    process.execPath,
    [...NODE_ARGS, '--import', 'tsx', 'services/contact-vault/src/main.ts'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const until = Date.now() + 60_000;
  while (!output.includes('contact vault serving')) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`the contact vault did not start on NATS:\n${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(
    path.join(dataDir, 'endpoints.json'),
    `${JSON.stringify({
      mode: 'embedded',
      pid: child.pid,
      caFile: cliTls.caFile,
      client: { certFile: cliTls.certFile, keyFile: cliTls.keyFile, spiffeId: 'spiffe://sealpost.dev/cli' },
      services: { 'contact-vault': { grpc: `127.0.0.1:${ports[0]}`, health: `127.0.0.1:${ports[1]}` } },
    })}\n`,
    { mode: 0o600 },
  );
  return {
    dataDir,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The audit stream must exist for the vault's audit events (the audit service creates it; it is not started here). */
async function ensureAuditStream(natsUrl: string): Promise<void> {
  const audit = await NatsServiceBus.connect({ servers: [natsUrl] }, { service: 'audit' });
  try {
    const jsm = await jetstreamManager(audit.connection);
    const exists = await jsm.streams.info(streamSpec('audit').name).then(
      () => true,
      () => false,
    );
    // An existing stream (other runs and test suites share the peer) is left exactly as it is.
    if (!exists) await audit.ensureStreams();
  } finally {
    await audit.close();
  }
}

async function natsReachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return portOpen(hostname, Number(port || 4222));
}

/** Imports a small CSV (not timed) so there are contacts to reveal. */
async function seedContacts(runner: Runner): Promise<void> {
  const { csv } = scaleCsv(SEED_ROWS);
  const client = connectVault(vaultConfig({ dataDir: runner.dataDir }));
  try {
    await importCsv(client, await token(runner.dataDir, 'marketer', false), TENANT, parseContactCsv(Buffer.from(csv)), {
      progress: false,
    });
  } finally {
    client.close();
  }
}

async function token(dataDir: string, role: string, mfa: boolean): Promise<string> {
  const issuer = await openDevTokenIssuer({ dir: path.join(dataDir, 'dev-identity'), mode: 'embedded' });
  return issuer.issue({ role, tenant: TENANT, mfa, ttl: 300 });
}

interface ImportFigures {
  rows: number;
  seconds: number;
  contactsPerSec: number;
  summary: Omit<ExpectedSummary, 'rejectedByReason'> & { rejectedByReason: Record<string, number> };
  exactSummary: boolean;
}

async function measureImport(runner: Runner, rows: number): Promise<ImportFigures> {
  const { csv, expected } = scaleCsv(rows);
  const parsed = parseContactCsv(Buffer.from(csv)); // not timed: the CLI validates the file before sending
  const client = connectVault(vaultConfig({ dataDir: runner.dataDir }));
  try {
    const summary = await importCsv(client, await token(runner.dataDir, 'marketer', false), TENANT, parsed, {
      progress: false,
    });
    const rejectedByReason: Record<string, number> = {};
    for (const r of summary.rejections) {
      const key = `${r.reason} ${r.field}`;
      rejectedByReason[key] = (rejectedByReason[key] ?? 0) + 1;
    }
    const got = {
      rows: summary.rows,
      created: summary.created,
      updated: summary.updated,
      unchanged: summary.unchanged,
      rejected: summary.rejected,
      rejectedByReason,
    };
    return {
      rows,
      seconds: summary.seconds,
      contactsPerSec: Math.round(rows / summary.seconds),
      summary: got,
      exactSummary: JSON.stringify(got) === JSON.stringify(expected),
    };
  } finally {
    client.close();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface CryptoFigures {
  write: { api: number; raw: number; ratio: number };
  read: { api: number; raw: number; ratio: number };
  kmsCallsPer1000Ops: number;
  kmsCallsPer1000OpsMaxUses1000: number;
}

type RevealFigures = Awaited<ReturnType<typeof measureReveal>>;

const REVEAL_EMBEDDED_BUS =
  'embedded runner: SQLite bus, WAL + synchronous=FULL (each audit publish fsynced before its ack), audit service ' +
  'appending in the same process';
const REVEAL_NATS_BUS =
  'standalone vault process: NATS JetStream peer, file storage, R1 (ack = written by the server, which fsyncs on its ' +
  'sync interval — default 2 min — not per message), no audit service consuming';

interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function latencyOf(times: number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  const round = (n: number) => Number(n.toFixed(2));
  return {
    count: times.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    meanMs: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
}

/**
 * The transport floor: a bare grpc-js server over mutual TLS in its own process (bench/support/grpc-echo-server.ts)
 * answering 200 bytes, called with a reveal's metadata. Resolves to a caller of one round trip, and a stop.
 */
async function startTransportFloor(md: grpc.Metadata): Promise<{ call(): Promise<void>; stop(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-bench-floor-'));
  const server = await writeDevTlsFiles({ dir, mode: 'embedded', service: 'contact-vault' });
  const client = await writeDevTlsFiles({ dir, mode: 'embedded', service: 'cli', usage: 'client' });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/support/grpc-echo-server.ts', server.caFile, server.certFile, server.keyFile],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the echo server exited (${code})`)));
  });
  const Echo = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
  const echo = new Echo(
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(
      readFileSync(client.caFile),
      readFileSync(client.keyFile),
      readFileSync(client.certFile),
    ),
    { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' },
  ) as unknown as {
    call(r: Buffer, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): void;
    close(): void;
  };
  const request = Buffer.alloc(60, 1); // a reveal request: tenant and contact ids
  return {
    call: () =>
      new Promise((resolve, reject) =>
        echo.call(request, md, { deadline: Date.now() + 30_000 }, (e) => (e ? reject(e) : resolve())),
      ),
    stop() {
      echo.close();
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Sequential reveals over gRPC (MFA token, purpose; each returns only after its audit event was acknowledged), each
 * followed by one round trip to the transport floor, so drift on the machine hits both alike: the reveal's figures
 * are read against a bare gRPC call's in the same run.
 */
async function measureReveal(runner: Runner): Promise<Latency & { floor: Latency }> {
  const client = connectVault(vaultConfig({ dataDir: runner.dataDir }));
  let floor: Awaited<ReturnType<typeof startTransportFloor>> | undefined;
  try {
    const reader = await token(runner.dataDir, 'marketer', false);
    const page = await unaryCall<vaultV1.ListContactsRequest, vaultV1.ListContactsResponse>(
      client,
      'listContacts',
      vaultV1.ListContactsRequest.fromPartial({ tenantId: TENANT, page: { pageSize: 100 } }),
      callMetadata(reader),
    );
    const ids = page.contacts.map((c) => c.contactId);
    if (ids.length === 0) throw new Error('no contacts to reveal');
    const support = await token(runner.dataDir, 'support', true);
    const md = callMetadata(support, { code: 'support-request' });
    floor = await startTransportFloor(md);
    const reveal = (i: number) =>
      unaryCall<vaultV1.RevealContactRequest, vaultV1.RevealContactResponse>(
        client,
        'revealContact',
        vaultV1.RevealContactRequest.fromPartial({ tenantId: TENANT, contactId: ids[i % ids.length]! }),
        md,
      );
    // Warm-up: connections, JIT, key caches.
    for (let i = 0; i < 200; i++) {
      await reveal(i);
      await floor.call();
    }
    const times: number[] = [];
    const floorTimes: number[] = [];
    for (let i = 0; i < REVEALS; i++) {
      const t0 = process.hrtime.bigint();
      await reveal(i);
      const t1 = process.hrtime.bigint();
      await floor.call();
      times.push(Number(t1 - t0) / 1e6);
      floorTimes.push(Number(process.hrtime.bigint() - t1) / 1e6);
    }
    return { ...latencyOf(times), floor: latencyOf(floorTimes) };
  } finally {
    floor?.stop();
    client.close();
  }
}

/**
 * How fast this machine is right now: nanoseconds per HMAC-SHA-256 call on 20 bytes (median of 5 rounds). A cloud
 * VM's speed drifts (1.7 µs in one hour, 3.7 µs in another were seen on the 2-core CI machine), and the absolute
 * figures (import rows/s, latencies) move with it; this is printed and saved beside them so runs can be compared.
 */
function machineSpeedNs(): number {
  const key = randomBytes(32);
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 50_000; i++) createHmac('sha256', key).update('jane.doe@example.com').digest();
    rounds.push(Number(process.hrtime.bigint() - start) / 50_000);
  }
  return Math.round(
    percentile(
      [...rounds].sort((a, b) => a - b),
      50,
    ),
  );
}

/** Runs packages/crypto/bench/crypto-core.ts in its own process (its report goes to this one's output). */
function runCryptoCore(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'packages/crypto/bench/crypto-core.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`crypto-core exited with ${code}`))));
  });
}

export async function main(): Promise<void> {
  const speedNs = machineSpeedNs();
  process.stdout.write(
    `vault benchmark (${[...ONLY].join(', ')}): import ${IMPORT_ROWS} rows (SQLite), ${FERRET_ROWS} (FerretDB), ` +
      `${REVEALS} reveals; machine speed now: ${speedNs} ns per HMAC-SHA-256 call\n`,
  );

  // 1. Crypto core beside the raw loop, and KMS calls per 1,000 operations (warm cache), in a process of its own: in
  // this one (gRPC, the CLI and the bus loaded) every collection costs more, and the side allocating more — the API —
  // pays it, so the ratio read 0.05–0.1 lower here and moved with whatever else this harness had loaded.
  let crypto: CryptoFigures | undefined;
  if (ONLY.has('crypto')) {
    const cryptoFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'sealpost-bench-crypto-')), 'crypto.json');
    await runCryptoCore(['--ops', '5000', '--rounds', '9', '--out', cryptoFile]);
    crypto = JSON.parse(readFileSync(cryptoFile, 'utf8')) as CryptoFigures;
    rmSync(path.dirname(cryptoFile), { recursive: true, force: true });
  }

  // 2. SQLite: import end to end over gRPC, then reveal latency on the same runner (embedded bus).
  let sqliteImport: ImportFigures | undefined;
  let reveal: RevealFigures | undefined;
  if (ONLY.has('import') || ONLY.has('reveal')) {
    const sqliteRunner = await startRunner({});
    try {
      if (ONLY.has('import')) {
        sqliteImport = await measureImport(sqliteRunner, IMPORT_ROWS);
        process.stdout.write(
          `import SQLite: ${sqliteImport.rows} rows in ${sqliteImport.seconds.toFixed(1)} s = ${sqliteImport.contactsPerSec} rows/s; ` +
            `summary ${JSON.stringify(sqliteImport.summary)} exact=${sqliteImport.exactSummary}\n`,
        );
      } else await seedContacts(sqliteRunner);
      if (ONLY.has('reveal')) reveal = await measureReveal(sqliteRunner);
    } finally {
      await sqliteRunner.stop();
    }
  }

  // 2b. Reveal on the production bus: the standalone vault process publishing its audit events to JetStream.
  let revealNats: RevealFigures | { skipped: string } | undefined;
  if (ONLY.has('nats')) {
    const nats = loadPeers().nats;
    if (!nats || !(await natsReachable(nats.url))) revealNats = { skipped: 'NATS peer not reachable' };
    else {
      const runner = await startVaultOnNats(nats.url);
      try {
        await seedContacts(runner);
        revealNats = await measureReveal(runner);
      } catch (err) {
        revealNats = { skipped: `failed: ${err instanceof Error ? err.message : String(err)}` };
      } finally {
        await runner.stop();
      }
    }
  }

  // 3. FerretDB (reported, no goal), when the peer is up.
  let ferret: ImportFigures | { skipped: string };
  const mongo = loadPeers().mongo;
  if (!ONLY.has('ferret')) ferret = { skipped: 'not selected (BENCH_VAULT_ONLY)' };
  else if (!mongo) ferret = { skipped: 'mongo peer not running (bash scripts/peers.sh up)' };
  else {
    const database = `bench_vault_${Date.now().toString(36)}`;
    const runner = await startRunner({
      SEALPOST_STORE: 'mongo',
      SEALPOST_MONGO_URL: mongo.url,
      SEALPOST_MONGO_DATABASE: database,
    });
    try {
      ferret = await measureImport(runner, FERRET_ROWS);
    } catch (err) {
      ferret = { skipped: `failed: ${err instanceof Error ? err.message : String(err)}` };
    } finally {
      await runner.stop();
      for (const name of [database, `${database}_keys`]) {
        const handle = await connectMongo({ url: mongo.url, database: name, appName: 'sealpost-bench' });
        await handle.db.dropDatabase().catch(() => undefined);
        await handle.close();
      }
    }
  }

  const result = {
    benchmark: 'vault',
    date: new Date().toISOString(),
    scope: {
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, Node ${process.version}`,
      machineSpeedNsPerHmac: speedNs,
      store:
        'import and reveal: the embedded runner process (pnpm start) — contact store and key store in two SQLite files, ' +
        'embedded bus, audit service; client: the CLI import client in this process over gRPC + mutual TLS ' +
        `(ImportContacts messages of ${IMPORT_ROWS_PER_MESSAGE} rows). ` +
        'FerretDB: the same runner with SEALPOST_STORE=mongo (batch writer: claims, contacts and data keys by ' +
        'insertMany per batch, no transaction; the relay removes published events in bulk writes of 20 documents)',
      durability:
        'SQLite WAL + synchronous=FULL (every commit fsynced; import commits once per batch of up to 4,096 rows per ' +
        'store; WAL checkpoints in a worker thread; the outbox relay publishes up to 1,000 events per bus commit and ' +
        'removes them in one outbox commit; quota takes commit without their own fsync); ' +
        'MongoDB/FerretDB writeConcern majority + journal; reveal answers only after the audit event is acknowledged by the bus',
      baseline:
        'crypto: raw loop of the same CSPRNG draws / AES-256-GCM / HMAC-SHA-256 calls on the same bytes, same run; ' +
        'reveal: each reveal followed by one bare grpc-js unary call over mutual TLS to a server process that does ' +
        'nothing (the transport floor), same metadata, same run; import: absolute figures against the goal',
      importCsv: 'per 20 rows: 16 new, 1 exact duplicate, 1 rename, 1 invalid email, 1 phone clash',
    },
    crypto: crypto
      ? {
          writeApiPerSec: Math.round(crypto.write.api),
          writeRawPerSec: Math.round(crypto.write.raw),
          writeRatio: Number(crypto.write.ratio.toFixed(2)),
          readApiPerSec: Math.round(crypto.read.api),
          readRawPerSec: Math.round(crypto.read.raw),
          readRatio: Number(crypto.read.ratio.toFixed(2)),
        }
      : null,
    kms: crypto
      ? {
          callsPer1000OpsWarm: Number(crypto.kmsCallsPer1000Ops.toFixed(4)),
          callsPer1000OpsMaxUses1000ColdStart: Number(crypto.kmsCallsPer1000OpsMaxUses1000.toFixed(2)),
        }
      : null,
    importSqlite: sqliteImport ?? null,
    importFerretDb: ferret,
    reveal: reveal ? { ...reveal, bus: REVEAL_EMBEDDED_BUS } : null,
    revealNats: revealNats && 'p99Ms' in revealNats ? { ...revealNats, bus: REVEAL_NATS_BUS } : (revealNats ?? null),
    // null: not measured in this run (BENCH_VAULT_ONLY, or the peer was not there).
    goals: {
      cryptoAtLeast08xRaw: crypto ? crypto.write.ratio >= 0.8 : null,
      importSqliteAtLeast10kPerSec: sqliteImport ? sqliteImport.contactsPerSec >= 10_000 : null,
      importExactSummary: sqliteImport ? sqliteImport.exactSummary : null,
      kmsAtMost1Per1000: crypto ? crypto.kmsCallsPer1000Ops <= 1 : null,
      revealP99Below5msEmbedded: reveal ? reveal.p99Ms < 5 : null,
      revealP99Below5msNats: revealNats && 'p99Ms' in revealNats ? revealNats.p99Ms < 5 : null,
    },
  };
  const lines: [string, string][] = [];
  if (result.crypto && result.kms) {
    lines.push(
      [
        'crypto write api / raw (goal ratio ≥ 0.80)',
        `${result.crypto.writeApiPerSec} / ${result.crypto.writeRawPerSec} ops/s = ${result.crypto.writeRatio}×`,
      ],
      [
        'crypto read api / raw',
        `${result.crypto.readApiPerSec} / ${result.crypto.readRawPerSec} ops/s = ${result.crypto.readRatio}×`,
      ],
      ['KMS calls per 1,000 ops, warm cache (goal ≤ 1)', String(result.kms.callsPer1000OpsWarm)],
    );
  }
  if (sqliteImport) {
    lines.push(
      [
        'import SQLite over gRPC (goal ≥ 10000 rows/s)',
        `${sqliteImport.contactsPerSec} rows/s (${sqliteImport.rows} rows, ${sqliteImport.seconds.toFixed(1)} s)`,
      ],
      ['import exact summary', `${sqliteImport.exactSummary} ${JSON.stringify(sqliteImport.summary)}`],
    );
  }
  if (ONLY.has('ferret')) {
    lines.push([
      'import FerretDB over gRPC (no goal)',
      'contactsPerSec' in ferret
        ? `${ferret.contactsPerSec} rows/s (${ferret.rows} rows, exact=${ferret.exactSummary})`
        : ferret.skipped,
    ]);
  }
  const floorOf = (r: RevealFigures) => `transport floor ${r.floor.p50Ms} / ${r.floor.p99Ms} ms`;
  if (reveal) {
    lines.push([
      'reveal p50 / p99 incl. audit ack (goal p99 < 5 ms)',
      `${reveal.p50Ms} / ${reveal.p99Ms} ms (${reveal.count} sequential; ${floorOf(reveal)}) — ${REVEAL_EMBEDDED_BUS}`,
    ]);
  }
  if (revealNats) {
    lines.push([
      'reveal p50 / p99 on NATS (goal p99 < 5 ms)',
      'p99Ms' in revealNats
        ? `${revealNats.p50Ms} / ${revealNats.p99Ms} ms (${revealNats.count} sequential; ${floorOf(revealNats)}) — ${REVEAL_NATS_BUS}`
        : revealNats.skipped,
    ]);
  }
  for (const [label, value] of lines) process.stdout.write(`${label.padEnd(52)} ${value}\n`);
  const out = path.resolve(__dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'vault.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write('wrote bench/results/vault.json\n');
}
