/**
 * `pnpm bench bus`: JetStream async publish and acked consume of 1 KB events through @sealpost/bus, beside
 * the raw ceiling of the same server measured in the same run by `nats bench` (the NATS CLI), plus the
 * embedded SQLite bus. Each is measured one event at a time (`publish` with 1000 in flight, `consume`) and
 * in batches (`publishMany`, `consumeBatches`). Writes bench/results/bus.json. Goals (tracked, not
 * asserted): publish ≥ 0.7× the raw ceiling; acked consume ≥ 50k msgs/s.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  EmbeddedBus,
  NatsServiceBus,
  createEnvelope,
  eventSubject,
  type ServiceBus,
  type StreamSettings,
} from '@sealpost/bus';
import { loadPeers } from '@sealpost/testkit';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50_000);
const PAYLOAD = new Uint8Array(1024).fill(7);
const IN_FLIGHT = 1000;
// publishMany: batches of 500, two in flight (the same 1000 outstanding events as the single path).
const PUBLISH_BATCH = 500;
const CONSUME_BATCH = 256;
// Short retention: the benchmark shares fixed-name streams with the test suites on the same server.
const STREAMS: StreamSettings = { defaults: { maxAgeMs: 10 * 60_000, maxBytes: 512 * 1024 * 1024 } };

interface Figures {
  publishPerSec: number;
  consumePerSec: number;
  publishManyPerSec: number;
  consumeBatchesPerSec: number;
}

function benchEvent(tenant: string, subject: string, i: number) {
  return createEnvelope({
    type: 'vault.bench',
    subject,
    tenant,
    aggregateId: `a${i}`,
    aggregateVersion: 1,
    payload: PAYLOAD,
  });
}

async function publishAll(bus: ServiceBus, tenant: string, count: number): Promise<number> {
  const subject = eventSubject('vault', tenant, 'bench');
  const started = process.hrtime.bigint();
  let next = 0;
  // A window of outstanding publishes: each resolves on the server's ack (async publish, bounded).
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await bus.publish(benchEvent(tenant, subject, i));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return rate(count, started);
}

async function publishManyAll(bus: ServiceBus, tenant: string, count: number): Promise<number> {
  const subject = eventSubject('vault', tenant, 'bench');
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const from = next;
      next = Math.min(count, next + PUBLISH_BATCH);
      const batch = [];
      for (let i = from; i < next; i++) batch.push(benchEvent(tenant, subject, i));
      await bus.publishMany(batch);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT / PUBLISH_BATCH }, worker));
  return rate(count, started);
}

async function consumeBatchesAll(bus: ServiceBus, tenant: string, count: number, durable: string): Promise<number> {
  let received = 0;
  let started = 0n;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const subscription = await bus.consumeBatches(
    {
      durable,
      domain: 'vault',
      filterSubjects: [eventSubject('vault', tenant, 'bench')],
      batch: CONSUME_BATCH,
      maxAckPending: 4096,
    },
    (events) => {
      if (received === 0) started = process.hrtime.bigint();
      received += events.length;
      if (received >= count) done();
    },
  );
  await finished;
  const perSec = rate(count, started);
  await subscription.stop();
  return perSec;
}

async function consumeAll(bus: ServiceBus, tenant: string, count: number, durable: string): Promise<number> {
  let received = 0;
  let started = 0n;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const subscription = await bus.consume(
    {
      durable,
      domain: 'vault',
      filterSubjects: [eventSubject('vault', tenant, 'bench')],
      batch: 256,
      maxAckPending: 4096,
    },
    () => {
      if (received === 0) started = process.hrtime.bigint();
      if (++received === count) done();
    },
  );
  await finished;
  const perSec = rate(count - 1, started);
  await subscription.stop();
  return perSec;
}

function rate(count: number, started: bigint): number {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return Math.round(count / seconds);
}

function natsBench(cli: string, server: string, args: string[]): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-bench-'));
  try {
    const csv = path.join(dir, 'out.csv');
    execFileSync(cli, ['-s', server, 'bench', 'js', ...args, '--no-progress', '--csv', csv], { stdio: 'pipe' });
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    const header = rows[0]!.replace(/^#/, '').split(',');
    const column = header.indexOf('MsgsPerSec');
    // The first data row is the aggregate over all clients.
    return Number(rows[1]!.split(',')[column]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureJetStream(
  server: string,
  cli: string,
): Promise<Figures & { raw: { publishPerSec: number; consumePerSec: number }; rawDedup: number }> {
  const rawCommon = ['--msgs', String(MESSAGES), '--size', '1KB', '--stream', 'SEALPOST_BENCH_RAW'];
  const rawPublish = natsBench(cli, server, [
    'pub',
    'async',
    'sealpost-bench.raw',
    ...rawCommon,
    '--create',
    '--purge',
  ]);
  const rawPublishDedup = natsBench(cli, server, [
    'pub',
    'async',
    'sealpost-bench.raw',
    ...rawCommon,
    '--purge',
    '--dedup',
  ]);
  // `nats bench js pub --create` also creates the CLI's default durable (`nats-bench`) that `consume` reads.
  const rawConsume = natsBench(cli, server, ['consume', ...rawCommon]);

  const tenant = `bench-${process.pid}`;
  const batchTenant = `benchb-${process.pid}`;
  const durable = `bench-${process.pid}`;
  const batchDurable = `benchb-${process.pid}`;
  // The vault publishes its events; anomaly is one of the services granted to consume them.
  const bus = await NatsServiceBus.connect({ servers: server }, { service: 'contact-vault', streams: STREAMS });
  const consumer = await NatsServiceBus.connect({ servers: server }, { service: 'anomaly', streams: STREAMS });
  try {
    await bus.ensureStreams();
    const publishPerSec = await publishAll(bus, tenant, MESSAGES);
    const consumePerSec = await consumeAll(consumer, tenant, MESSAGES, durable);
    const publishManyPerSec = await publishManyAll(bus, batchTenant, MESSAGES);
    const consumeBatchesPerSec = await consumeBatchesAll(consumer, batchTenant, MESSAGES, batchDurable);
    return {
      publishPerSec,
      consumePerSec,
      publishManyPerSec,
      consumeBatchesPerSec,
      raw: { publishPerSec: rawPublish, consumePerSec: rawConsume },
      rawDedup: rawPublishDedup,
    };
  } finally {
    await bus.close();
    await consumer.close();
    // The benchmark cleans up what it made: its durable consumers and the raw stream.
    const nc = await connect({ servers: server });
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete('SEALPOST_VAULT', durable).catch(() => undefined);
    await jsm.consumers.delete('SEALPOST_VAULT', batchDurable).catch(() => undefined);
    await jsm.streams.delete('SEALPOST_BENCH_RAW').catch(() => undefined);
    // Its events too: a stream left near its byte limit makes the next suite's limit change trim it slowly.
    await jsm.streams.purge('SEALPOST_VAULT', { filter: `sealpost.vault.${tenant}.>` }).catch(() => undefined);
    await jsm.streams.purge('SEALPOST_VAULT', { filter: `sealpost.vault.${batchTenant}.>` }).catch(() => undefined);
    await nc.close();
  }
}

async function measureEmbedded(): Promise<Figures> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-bench-embedded-'));
  const bus = EmbeddedBus.open(path.join(dir, 'bus.sqlite'), { streams: STREAMS });
  try {
    const vault = bus.forService('contact-vault');
    await vault.ensureStreams();
    const publishPerSec = await publishAll(vault, 'bench', MESSAGES);
    const anomaly = bus.forService('anomaly');
    const consumePerSec = await consumeAll(anomaly, 'bench', MESSAGES, 'bench');
    const publishManyPerSec = await publishManyAll(vault, 'benchb', MESSAGES);
    const consumeBatchesPerSec = await consumeBatchesAll(anomaly, 'benchb', MESSAGES, 'benchb');
    return { publishPerSec, consumePerSec, publishManyPerSec, consumeBatchesPerSec };
  } finally {
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  const peers = loadPeers();
  const server = peers.nats?.url;
  const cli = peers.natsCli;
  if (!server || !cli) throw new Error('needs the NATS peer and the NATS CLI: run `bash scripts/peers.sh up` first');
  const version = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  process.stdout.write(`bus benchmark: ${MESSAGES} events of 1 KB, server ${server}, nats CLI ${version}\n`);

  const jetstream = await measureJetStream(server, cli);
  const embedded = await measureEmbedded();
  const publishRatio = jetstream.publishPerSec / jetstream.raw.publishPerSec;
  const publishManyRatio = jetstream.publishManyPerSec / jetstream.raw.publishPerSec;
  const result = {
    benchmark: 'bus',
    date: new Date().toISOString(),
    scope: {
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, Node ${process.version}`,
      store: 'JetStream file storage, 1 replica (machine NATS server); embedded: SQLite WAL, synchronous=FULL',
      durability:
        'publish/publishMany resolve on the server ack (JetStream) or the SQLite commit (embedded; concurrent writes share one commit); consume and consumeBatches ack each message explicitly, acks not awaited (JetStream) or group-committed (embedded)',
      baseline: '`nats bench js pub async` / `nats bench js consume` against the same server in the same run',
      messages: MESSAGES,
      payloadBytes: PAYLOAD.length,
      inFlightPublishes: IN_FLIGHT,
      publishManyBatch: PUBLISH_BATCH,
      consumeBatch: CONSUME_BATCH,
    },
    jetstream: {
      publishPerSec: jetstream.publishPerSec,
      ackedConsumePerSec: jetstream.consumePerSec,
      publishManyPerSec: jetstream.publishManyPerSec,
      ackedConsumeBatchesPerSec: jetstream.consumeBatchesPerSec,
      rawPublishPerSec: jetstream.raw.publishPerSec,
      rawPublishWithMsgIdPerSec: jetstream.rawDedup,
      rawConsumePerSec: jetstream.raw.consumePerSec,
      publishRatioToRaw: Number(publishRatio.toFixed(2)),
      publishManyRatioToRaw: Number(publishManyRatio.toFixed(2)),
    },
    embedded: {
      publishPerSec: embedded.publishPerSec,
      ackedConsumePerSec: embedded.consumePerSec,
      publishManyPerSec: embedded.publishManyPerSec,
      ackedConsumeBatchesPerSec: embedded.consumeBatchesPerSec,
    },
    goals: {
      publishAtLeast07xRaw: publishRatio >= 0.7,
      publishManyAtLeast07xRaw: publishManyRatio >= 0.7,
      ackedConsumeAtLeast50k: jetstream.consumePerSec >= 50_000,
      ackedConsumeBatchesAtLeast50k: jetstream.consumeBatchesPerSec >= 50_000,
    },
  };
  const rows: [string, number][] = [
    ['JetStream publish (sealpost bus)', jetstream.publishPerSec],
    ['  raw ceiling: nats bench js pub async', jetstream.raw.publishPerSec],
    ['  raw with Nats-Msg-Id (dedup)', jetstream.rawDedup],
    ['JetStream publishMany (sealpost bus)', jetstream.publishManyPerSec],
    ['JetStream acked consume (sealpost bus, goal ≥ 50000)', jetstream.consumePerSec],
    ['JetStream acked consumeBatches (sealpost bus, goal ≥ 50000)', jetstream.consumeBatchesPerSec],
    ['  raw: nats bench js consume', jetstream.raw.consumePerSec],
    ['embedded publish', embedded.publishPerSec],
    ['embedded publishMany', embedded.publishManyPerSec],
    ['embedded acked consume', embedded.consumePerSec],
    ['embedded acked consumeBatches', embedded.consumeBatchesPerSec],
  ];
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(60)} ${String(value).padStart(10)} msgs/s\n`);
  process.stdout.write(
    `${'publish ratio to raw ceiling (goal ≥ 0.70)'.padEnd(60)} ${publishRatio.toFixed(2).padStart(10)}\n`,
  );
  process.stdout.write(
    `${'publishMany ratio to raw ceiling (goal ≥ 0.70)'.padEnd(60)} ${publishManyRatio.toFixed(2).padStart(10)}\n`,
  );
  const out = path.resolve(__dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'bus.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote bench/results/bus.json\n`);
}
