import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FencedLogWriter, FileWitness, LocalEd25519Signer, SqliteAuditLogStore, signTreeHead } from '@sealpost/audit';
import { encodeAuditEntry, type AuditEntry } from '@sealpost/audit-format';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const main = path.join(root, 'packages/cli/src/main.ts');
const verifyProofTool = path.join(root, 'services/audit/tools/verify-proof.mjs');

async function exec(file: string, args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SEALPOST_')));
  try {
    const { stdout, stderr } = await run(file, args, { env: { ...base, ...env }, cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Runs the real CLI in a child process, as `pnpm sealpost` would. */
const sealpost = (args: string[], env: Record<string, string> = {}) => exec(tsx, [main, ...args], env);

let n = 0;
function entry(): AuditEntry {
  n += 1;
  return {
    entryId: `evt-cli-${process.pid}-${n}`,
    sourceService: 'vault',
    tenantId: 't1',
    action: 'contact.reveal',
    actorKind: 'operator',
    actorId: `op-${n}`,
    resourceIds: ['ct-1'],
    purposeCode: 'support',
    ticketRef: 'SEC-1',
    outcome: 'granted',
    traceId: '',
    occurredAt: Date.UTC(2025, 0, 1) + n * 60_000,
  };
}

/** An embedded-mode data dir as the audit service leaves it: log, key file, witness; heads at 8, 16, 24. */
async function seed(dataDir: string): Promise<AuditEntry[]> {
  const store = SqliteAuditLogStore.open(path.join(dataDir, 'audit.sqlite'));
  const signer = await LocalEd25519Signer.fromFile(path.join(dataDir, 'audit', 'sth-signing.jwk.json'));
  const witness = new FileWitness(path.join(dataDir, 'audit', 'witness.jsonl'));
  const writer = new FencedLogWriter(store, 1);
  await writer.open();
  const all: AuditEntry[] = [];
  for (let k = 0; k < 3; k++) {
    const batch = Array.from({ length: 8 }, entry);
    await writer.append(batch);
    all.push(...batch);
    await signTreeHead({ store, signer, witness, logId: 'sealpost-audit' });
  }
  writer.close();
  await store.close();
  return all;
}

describe('sealpost audit', () => {
  let dir: string;
  let dataDir: string;
  let entries: AuditEntry[];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealpost-cli-audit-'));
    dataDir = path.join(dir, 'data');
    entries = await seed(dataDir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('has --help for every audit command', async () => {
    const top = await sealpost(['audit', '--help']);
    expect(top.code).toBe(0);
    for (const sub of ['verify', 'prove', 'public-key', 'prune']) {
      expect(top.stdout).toContain(sub);
      const help = await sealpost(['audit', sub, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: sealpost audit ${sub} `));
    }
  }, 60_000);

  it('verifies an intact log (exit 0) against the witness, with a clear verdict', async () => {
    const r = await sealpost(['audit', 'verify', '--data-dir', dataDir]);
    expect(r.stdout).toMatch(/^audit log OK: 24 entries, root [0-9a-f]{64}, 3 signed heads/);
    expect(r.stdout).toContain('pinned head of size 24');
    expect(r.stderr).toMatch(/verified 24\/24 entries \(\d+ entries\/s\)/);
    expect(r.code).toBe(0);
  }, 30_000);

  it('prints a proof an outside party checks with only the public key and the standalone tool', async () => {
    const out = path.join(dir, 'proof.json');
    const prove = await sealpost([
      'audit',
      'prove',
      '--entry',
      entries[5]!.entryId,
      '--out',
      out,
      '--data-dir',
      dataDir,
    ]);
    expect(prove.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toMatchObject({ leafIndex: 5, treeSize: 24 });
    const stdoutProof = await sealpost(['audit', 'prove', '--entry', entries[5]!.entryId], {
      SEALPOST_DATA_DIR: dataDir,
    });
    expect(JSON.parse(stdoutProof.stdout)).toEqual(JSON.parse(fs.readFileSync(out, 'utf8')));

    const key = await sealpost(['audit', 'public-key', '--data-dir', dataDir]);
    expect(key.code).toBe(0);
    const jwks = JSON.parse(key.stdout) as { keys: { kty: string; crv: string; d?: string }[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(jwks.keys[0]!.d).toBeUndefined();
    const jwksFile = path.join(dir, 'jwks.json');
    fs.writeFileSync(jwksFile, key.stdout);
    const checked = await exec(process.execPath, [verifyProofTool, out, jwksFile]);
    expect(checked.stdout).toMatch(/^OK: /);
    expect(checked.code).toBe(0);

    const missing = await sealpost(['audit', 'prove', '--entry', 'no-such-entry', '--data-dir', dataDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ENTRY_NOT_FOUND');
  }, 60_000);

  it('usage and configuration errors exit 2', async () => {
    const noLog = await sealpost(['audit', 'verify', '--data-dir', path.join(dir, 'empty')]);
    expect(noLog.code).toBe(2);
    expect(noLog.stderr).toMatch(/no tree-head key|no audit log/);
    const badSth = path.join(dir, 'bad-sth.json');
    fs.writeFileSync(badSth, 'not json');
    const bad = await sealpost(['audit', 'verify', '--data-dir', dataDir, '--trusted-sth', badSth]);
    expect(bad.code).toBe(2);
    expect((await sealpost(['audit', 'prove', '--data-dir', dataDir])).code).toBe(2);
    expect((await sealpost(['audit', 'prune', '--before', 'yesterday-ish', '--data-dir', dataDir])).code).toBe(2);
  }, 60_000);

  it('prunes by date (dry run first); the remainder still verifies', async () => {
    const before = new Date(entries[10]!.occurredAt).toISOString();
    const dry = await sealpost(['audit', 'prune', '--before', before, '--dry-run', '--data-dir', dataDir]);
    expect(dry.stdout).toContain('would prune 10 entries: prune point 0 → 10 (stopped by time)');
    expect(dry.code).toBe(0);
    const done = await sealpost(['audit', 'prune', '--before', before, '--data-dir', dataDir]);
    expect(done.stdout).toContain('pruned 10 entries');
    const r = await sealpost(['audit', 'verify', '--data-dir', dataDir]);
    expect(r.stdout).toMatch(/^audit log OK: 24 entries.*entries before 10 pruned/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('finds an edited entry: exit 1, naming the index and what is wrong', async () => {
    const store = SqliteAuditLogStore.open(path.join(dataDir, 'audit.sqlite'));
    try {
      store.db
        .prepare('UPDATE audit_leaves SET canonical = ? WHERE idx = 13')
        .run(encodeAuditEntry({ ...entries[13]!, actorId: 'op-forged' }));
    } finally {
      await store.close();
    }
    const r = await sealpost(['audit', 'verify', '--data-dir', dataDir]);
    expect(r.stdout).toMatch(/^audit log PROBLEM: ENTRY_MODIFIED at index 13: entry 13 was modified/);
    expect(r.stdout).not.toContain('op-forged');
    expect(r.code).toBe(1);
    const json = await sealpost(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, problem: 'ENTRY_MODIFIED', index: 13 });
  }, 60_000);
});
