/**
 * `sealpost contacts …` and `keys rotate` against a REAL running runner (the process `pnpm start` runs, temp data
 * directory, free ports), through endpoints.json, mutual TLS and dev operator tokens — each command run as its own
 * CLI process, exactly as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SqliteErasureRepository, openSqliteContactStore } from '@sealpost/contact-vault';
import { waitFor } from '@sealpost/testkit';
import { scaleCsv } from './support/scale-csv';

const ROOT = path.resolve(__dirname, '../../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const MAIN = path.join(ROOT, 'packages/cli/src/main.ts');
const TENANT = 't-cli';
const SCALE_ROWS = 100_000;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SEALPOST_')));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('sealpost contacts / keys against a running runner', () => {
  let dataDir: string;
  let runner: ChildProcess;
  let runnerOutput = '';

  /** Runs the CLI as a child process with the runner's data directory; `input` goes to stdin. */
  const sealpost = (args: string[], input?: string): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(TSX, [MAIN, ...args], {
        cwd: ROOT,
        env: { ...cleanEnv(), SEALPOST_DATA_DIR: dataDir },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input ?? '');
    });

  const tokenFile = async (role: string, mfa: boolean, tenant = TENANT): Promise<string> => {
    const r = await sealpost(['dev', 'token', '--role', role, '--tenant', tenant, ...(mfa ? ['--mfa'] : [])]);
    expect(r.code).toBe(0);
    const file = path.join(dataDir, `token-${tenant}-${role}-${mfa ? 'mfa' : 'plain'}.jwt`);
    writeFileSync(file, r.stdout, { mode: 0o600 });
    return file;
  };
  /** `contacts find --email` in the test tenant, as the holder of `token`. */
  const findByEmail = (email: string, token: string): Promise<Run> =>
    sealpost(['contacts', 'find', '--tenant', TENANT, '--email', email, '--token-file', token]);
  const csv = (name: string, content: string | Buffer): string => {
    const file = path.join(dataDir, name);
    writeFileSync(file, content);
    return file;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-cli-vault-'));
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    runner = spawn(process.execPath, ['--import', 'tsx', 'services/runner/src/main.ts'], {
      cwd: ROOT,
      env: {
        ...cleanEnv(),
        SEALPOST_DATA_DIR: dataDir,
        SEALPOST_AUDIT_GRPC_ADDR: `127.0.0.1:${ports[0]}`,
        SEALPOST_AUDIT_HEALTH_ADDR: `127.0.0.1:${ports[1]}`,
        SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${ports[2]}`,
        SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${ports[3]}`,
        // Tree heads every second: an erasure completes once a signed head covers its audit entry.
        SEALPOST_AUDIT_STH_EVERY_SECONDS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runner.stdout!.on('data', (c: Buffer) => (runnerOutput += c.toString()));
    runner.stderr!.on('data', (c: Buffer) => (runnerOutput += c.toString()));
    await waitFor('endpoints.json', () => existsSync(path.join(dataDir, 'endpoints.json')), { timeoutMs: 40_000 });
  }, 60_000);

  afterAll(async () => {
    if (runner.exitCode === null) {
      const exited = new Promise((r) => runner.once('exit', r));
      runner.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (runner.exitCode === null) runner.kill('SIGKILL');
    }
    runner.stdout?.destroy();
    runner.stderr?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }, 15_000);

  // Spreadsheet row numbers: the header is row 1.
  const FILE = [
    'email,phone,name',
    'ann@example.com,+447911123456,Ann', // 2 created
    'bob@example.com,,', // 3 created (no name yet)
    'ANN@example.com,,Ann', // 4 unchanged: same person, nothing new
    'not-an-email,,Nobody', // 5 rejected: email
    'carol@example.com,+447911123456,Carol', // 6 rejected: Ann's phone under a new email
    'bob@example.com,+447911123457,"Bob, Jr"', // 7 updated: phone and name added/changed
    ',,Nameless', // 8 rejected: neither email nor phone
    'dan@example.com,12,Dan', // 9 rejected: phone
  ].join('\n');

  let annId = '';

  it('has --help on every new command', async () => {
    for (const args of [
      ['contacts', 'import'],
      ['contacts', 'find'],
      ['contacts', 'reveal'],
      ['contacts', 'erase'],
      ['contacts', 'verify-receipt'],
      ['contacts', 'receipt-public-key'],
      ['contacts', 'sweep'],
      ['contacts', 'reapply-erasures'],
      ['keys', 'rotate'],
    ]) {
      const help = await sealpost([...args, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: sealpost /);
    }
  }, 90_000);

  it('imports a CSV with duplicates and bad rows: exact summary, progress on stderr; a re-run changes nothing', async () => {
    const file = csv('contacts.csv', FILE);
    const token = await tokenFile('marketer', false);
    const first = await sealpost(['contacts', 'import', file, '--tenant', TENANT, '--token-file', token]);
    expect(first.stderr).toMatch(/8\/8 rows 100% \d+ rows\/s ETA/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/imported 8 rows .*: created 2, updated 1, unchanged 1, rejected 4\n/);
    expect(first.stdout).toContain(
      [
        '  row 5: INVALID_ARGUMENT (email)',
        '  row 6: DEDUPE_CONFLICT (phone)',
        '  row 8: INVALID_ARGUMENT (fields)',
        '  row 9: INVALID_ARGUMENT (phone)',
      ].join('\n'),
    );
    // No value is echoed, not even a rejected one.
    expect(first.stdout + first.stderr).not.toMatch(/example\.com|not-an-email|7911/);

    // The token can come on stdin too.
    const again = await sealpost(
      ['contacts', 'import', file, '--tenant', TENANT, '--token-file', '-', '--json'],
      readFileSync(token, 'utf8'),
    );
    expect(again.code).toBe(0);
    const summary = JSON.parse(again.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({ rows: 8, created: 0, updated: 0, unchanged: 4, rejected: 4 });
  }, 90_000);

  it('rejects a row too large for any import message like the vault would, and imports the rest', async () => {
    // Larger than the vault takes in one import message (1 MiB): sent, it would end the whole import.
    const huge = 'h'.repeat(1200 * 1024);
    const rows = [
      'email,name',
      'gil@example.com,Gil',
      `hal@example.com,${huge}`,
      'ida@example.com,',
      'jo@example.com,Jo',
    ];
    const token = await tokenFile('marketer', false, 't-huge');
    const r = await sealpost([
      'contacts',
      'import',
      csv('huge.csv', rows.join('\n')),
      '--tenant',
      't-huge',
      '--token-file',
      token,
      '--json',
    ]);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({
      rows: 4,
      created: 3,
      updated: 0,
      unchanged: 0,
      rejected: 1,
      rejections: [{ row: 3, reason: 'INVALID_ARGUMENT', field: 'name' }],
    });
    expect(r.stdout + r.stderr).not.toMatch(/hhhh|example\.com/);
  }, 60_000);

  it('refuses a CSV with wrong columns or broken UTF-8 naming the row, exit 2, nothing sent', async () => {
    const token = await tokenFile('marketer', false);
    const wrong = await sealpost([
      'contacts',
      'import',
      csv('wrong.csv', 'mail,phone\nx@example.com,\n'),
      '--tenant',
      TENANT,
      '--token-file',
      token,
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/row 1: unknown column "mail"/);
    expect(wrong.stderr).toContain('nothing was imported');

    const broken = csv(
      'broken.csv',
      Buffer.concat([
        Buffer.from('email,name\nerin@example.com,Erin\nfay@example.com,'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('\n'),
      ]),
    );
    const bad = await sealpost(['contacts', 'import', broken, '--tenant', TENANT, '--token-file', token]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/row 3: not valid UTF-8/);
    // Row 2 was fine, but the file was refused as a whole: erin does not exist.
    const support = await tokenFile('support', false);
    const find = await findByEmail('erin@example.com', support);
    expect(find.code).toBe(0);
    expect(find.stdout).toBe('no contact found\n');
  }, 90_000);

  it('finds a contact by email and by phone: masked view only', async () => {
    const token = await tokenFile('support', false);
    const byEmail = await findByEmail('Ann@Example.com', token);
    expect(byEmail.code).toBe(0);
    const match = /^(\S+)\s+email (\S+)\s+phone (\S+)/.exec(byEmail.stdout);
    expect(match).not.toBeNull();
    annId = match![1]!;
    expect(byEmail.stdout).not.toContain('ann@example.com');
    expect(byEmail.stdout).not.toContain('+447911123456');
    const byPhone = await sealpost([
      'contacts',
      'find',
      '--tenant',
      TENANT,
      '--phone',
      '+447911123456',
      '--token-file',
      token,
    ]);
    expect(byPhone.stdout.split('\n')[0]).toContain(annId);
  }, 60_000);

  it('reveals with an MFA token and a purpose; refuses without MFA with a clear message', async () => {
    const mfa = await tokenFile('support', true);
    const shown = await sealpost([
      'contacts',
      'reveal',
      annId,
      '--tenant',
      TENANT,
      '--purpose',
      'support-request',
      '--ticket',
      'OPS-1234',
      '--token-file',
      mfa,
    ]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe(`contact ${annId}\nemail: ann@example.com\nphone: +447911123456\nname: Ann\n`);
    expect(shown.stderr).toMatch(/audited as event \S+/);

    const plain = await tokenFile('support', false);
    const refused = await sealpost([
      'contacts',
      'reveal',
      annId,
      '--tenant',
      TENANT,
      '--purpose',
      'support-request',
      '--token-file',
      plain,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/STEP_UP_REQUIRED: .*MFA/);
  }, 60_000);

  const receiptFile = (): string => path.join(dataDir, 'ann-receipt.jws');

  it('erases a contact and prints the signed receipt; the contact is gone', async () => {
    const dpo = await tokenFile('dpo', true);
    const erased = await sealpost([
      'contacts',
      'erase',
      annId,
      '--tenant',
      TENANT,
      '--purpose',
      'subject-access',
      '--keep-suppression',
      '--receipt-out',
      receiptFile(),
      '--token-file',
      dpo,
    ]);
    expect(erased.code).toBe(0);
    expect(readFileSync(receiptFile(), 'utf8').trim()).toBe(/receipt: (\S+)/.exec(erased.stdout)![1]);
    expect(erased.stdout).toMatch(
      new RegExp(`^erased ${annId} \\(operation \\S+\\)\\nreceipt: [\\w-]+\\.[\\w-]+\\.[\\w-]+\\n`),
    );
    expect(erased.stdout).toContain(annId);
    const find = await findByEmail('ann@example.com', dpo);
    expect(find.stdout).toBe('no contact found\n');
  }, 60_000);

  it("verifies the receipt: against the running deployment's keys, as a third party with key files only, and with the standalone proof tool; tampering exits 1", async () => {
    const ok = await sealpost(['contacts', 'verify-receipt', receiptFile()]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(
      new RegExp(
        `^receipt OK: erasure er_\\w+ of contact ${annId} in tenant ${TENANT} at \\S+, signed by receipt key \\S+\\n` +
          'audit entry \\S+ \\(contact\\.erase\\) is leaf \\d+ of log sealpost-audit at size \\d+, root [0-9a-f]{64}, ' +
          'head signed \\S+ by audit key \\S+\\n',
      ),
    );
    expect(ok.stdout).toContain('kept: tombstone; erasure ledger entry; suppression tombstone; audit log entry\n');

    // A third party: the two published public keys and the receipt, nothing else (an empty data directory).
    const receiptKey = await sealpost(['contacts', 'receipt-public-key']);
    const auditKey = await sealpost(['audit', 'public-key']);
    expect([receiptKey.code, auditKey.code]).toEqual([0, 0]);
    expect(JSON.parse(receiptKey.stdout).keys[0].d).toBeUndefined();
    const outside = mkdtempSync(path.join(os.tmpdir(), 'sealpost-third-party-'));
    try {
      writeFileSync(path.join(outside, 'receipt-jwks.json'), receiptKey.stdout);
      writeFileSync(path.join(outside, 'audit-jwks.json'), auditKey.stdout);
      const third = (file: string, extra: string[] = []) =>
        sealpost([
          'contacts',
          'verify-receipt',
          file,
          '--receipt-jwks',
          path.join(outside, 'receipt-jwks.json'),
          '--audit-jwks',
          path.join(outside, 'audit-jwks.json'),
          '--data-dir',
          outside,
          ...extra,
        ]);
      const proofFile = path.join(outside, 'audit-proof.json');
      const checked = await third(receiptFile(), ['--export-audit-proof', proofFile]);
      expect(checked.code).toBe(0);
      expect(checked.stdout).toMatch(/^receipt OK: /);
      // The same audit proof, checked by the dependency-free verifier an outside party can re-implement.
      const tool = await new Promise<Run>((resolve) => {
        const child = spawn(process.execPath, [
          path.join(ROOT, 'services/audit/tools/verify-proof.mjs'),
          proofFile,
          path.join(outside, 'audit-jwks.json'),
        ]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      expect(tool.stdout).toMatch(/^OK: entry \S+ is leaf \d+ of log sealpost-audit/);
      expect(tool.code).toBe(0);

      // Tampering: a proof hash changed in the payload (the receipt signature no longer matches) → exit 1.
      const [h, p, sig] = readFileSync(receiptFile(), 'utf8').trim().split('.');
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8'));
      payload.inclusionProof.hashes[0] = Buffer.alloc(32, 7).toString('base64url');
      const tampered = path.join(outside, 'tampered.jws');
      writeFileSync(tampered, `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`);
      const bad = await third(tampered);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe(
        'receipt FAILED: RECEIPT_SIGNATURE_INVALID: the receipt JWS does not verify with the given receipt key(s)\n',
      );
      // The wrong audit key (the receipt key in its place) → exit 1, naming the tree head.
      const wrongKey = await sealpost([
        'contacts',
        'verify-receipt',
        receiptFile(),
        '--receipt-jwks',
        path.join(outside, 'receipt-jwks.json'),
        '--audit-jwks',
        path.join(outside, 'receipt-jwks.json'),
        '--json',
      ]);
      expect(wrongKey.code).toBe(1);
      expect(JSON.parse(wrongKey.stdout)).toMatchObject({ ok: false, problem: 'TREE_HEAD_SIGNATURE_INVALID' });
      // Usage: no such file, or no keys where none can be found → exit 2.
      const missing = await third(path.join(outside, 'nope.jws'));
      expect([missing.code, missing.stderr]).toEqual([
        2,
        `sealpost: ${path.join(outside, 'nope.jws')} is not readable\n`,
      ]);
      const noKeys = await sealpost(['contacts', 'verify-receipt', receiptFile(), '--data-dir', outside]);
      expect(noKeys.code).toBe(2);
      expect(noKeys.stderr).toMatch(/^sealpost: no receipt key at .*; pass --receipt-jwks FILE\n$/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  }, 90_000);

  it('rotates the tenant KEK with progress until done', async () => {
    const admin = await tokenFile('admin', true);
    const rotated = await sealpost([
      'keys',
      'rotate',
      '--tenant',
      TENANT,
      '--kind',
      'kek',
      '--purpose',
      'legal-hold',
      '--token-file',
      admin,
    ]);
    expect(rotated.code).toBe(0);
    expect(rotated.stderr).toMatch(/\[#{24}\] 100%/);
    expect(rotated.stdout).toMatch(/^rotated the kek key of t-cli \(operation \S+\)/);
    // Contacts stay readable under the new KEK.
    const mfa = await tokenFile('support', true);
    const find = await findByEmail('bob@example.com', mfa);
    const bobId = find.stdout.split(/\s/)[0]!;
    const shown = await sealpost([
      'contacts',
      'reveal',
      bobId,
      '--tenant',
      TENANT,
      '--purpose',
      'support-request',
      '--token-file',
      mfa,
    ]);
    expect(shown.stdout).toContain('email: bob@example.com\nphone: +447911123457\nname: Bob, Jr\n');
  }, 90_000);

  it('counts the retention sweep offline (dry run) and re-applies the erasure ledger', async () => {
    const sweep = await sealpost(['contacts', 'sweep', '--dry-run', '--tenant', TENANT, '--days', '0']);
    expect(sweep.code).toBe(0);
    // Bob is the only live contact left (Ann was erased).
    expect(sweep.stdout).toBe(`dry run: tenant ${TENANT}: 1 contacts inactive for 0+ days\n`);
    const refuse = await sealpost(['contacts', 'sweep', '--tenant', TENANT, '--days', '0']);
    expect(refuse.code).toBe(2);
    const reapply = await sealpost(['contacts', 'reapply-erasures']);
    expect(reapply.code).toBe(0);
    expect(reapply.stdout).toBe(
      'erasure ledger: 1 entries, 0 data keys deleted again, 0 contacts live again (erase them again)\n',
    );

    // An erasure of Bob stopped right after its ledger entry (a crash): Bob is live again and must be erased again.
    const support = await tokenFile('support', true);
    const find = await findByEmail('bob@example.com', support);
    const bobId = find.stdout.split(/\s/)[0]!;
    expect(bobId).toMatch(/^ct_/);
    const db = openSqliteContactStore(path.join(dataDir, 'contact-vault.sqlite'));
    try {
      await new SqliteErasureRepository(db).appendLedger({
        tenantId: TENANT,
        contactId: bobId,
        erasureId: 'er_zzzz-crashed',
        erasedAt: new Date(),
      });
    } finally {
      db.close();
    }
    const live = await sealpost(['contacts', 'reapply-erasures']);
    expect(live.code).toBe(1);
    expect(live.stdout).toBe(
      'erasure ledger: 2 entries, 1 data keys deleted again, 1 contacts live again (erase them again)\n',
    );
  }, 60_000);
  it(`imports a ${SCALE_ROWS}-row CSV with duplicates and bad rows with an exact summary`, async () => {
    const { csv: text, expected } = scaleCsv(SCALE_ROWS);
    const file = csv('scale.csv', text);
    const token = await tokenFile('marketer', false, 't-scale');
    const started = Date.now();
    const r = await sealpost(['contacts', 'import', file, '--tenant', 't-scale', '--token-file', token, '--json']);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    const summary = JSON.parse(r.stdout) as {
      rows: number;
      created: number;
      updated: number;
      unchanged: number;
      rejected: number;
      rejections: { row: number; reason: string; field: string }[];
    };
    expect(summary).toMatchObject({
      rows: expected.rows,
      created: expected.created,
      updated: expected.updated,
      unchanged: expected.unchanged,
      rejected: expected.rejected,
    });
    // Every rejection by row number: data row i (0-based) is spreadsheet row i + 2.
    const wanted = Array.from({ length: SCALE_ROWS / 20 }, (_, b) => [
      { row: 20 * b + 18 + 2, reason: 'INVALID_ARGUMENT', field: 'email' },
      { row: 20 * b + 19 + 2, reason: 'DEDUPE_CONFLICT', field: 'phone' },
    ]).flat();
    expect(summary.rejections).toEqual(wanted);
    process.stderr.write(`scale import: ${SCALE_ROWS} rows in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }, 240_000);
});
