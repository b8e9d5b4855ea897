import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader } from 'jose';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const main = path.join(root, 'packages/cli/src/main.ts');

/** Runs the real CLI in a child process, as `pnpm sealpost` would, with a clean SEALPOST_* environment. */
async function sealpost(args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SEALPOST_')));
  try {
    const { stdout, stderr } = await run(tsx, [main, ...args], { env: { ...base, ...env }, cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('sealpost CLI', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-cli-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('lists its commands with --help, and every command has --help', async () => {
    const top = await sealpost(['--help']);
    expect(top.code).toBe(0);
    for (const command of ['dev', 'config']) expect(top.stdout).toContain(command);
    for (const args of [
      ['dev', 'token'],
      ['config', 'check'],
      ['config', 'table'],
    ]) {
      const help = await sealpost([...args, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: sealpost /);
    }
  }, 60_000);

  it('prints a dev token with the requested role, tenant and MFA', async () => {
    const result = await sealpost(['dev', 'token', '--role', 'support', '--tenant', 'acme', '--mfa'], {
      SEALPOST_DATA_DIR: dataDir,
    });
    expect(result.code).toBe(0);
    const token = result.stdout.trim();
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ tenant: 'acme', roles: ['support'], aud: 'sealpost' });
    expect(claims.amr).toContain('mfa');
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(300);
  }, 30_000);

  it('refuses dev tokens in production mode, naming the reason', async () => {
    const result = await sealpost(['dev', 'token', '--role', 'admin', '--tenant', 'acme'], {
      SEALPOST_MODE: 'production',
      SEALPOST_DATA_DIR: dataDir,
    });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/CONFIG_INVALID|DEV_MODE_REFUSED/);
  }, 30_000);

  it('reports every configuration problem by setting name without echoing values', async () => {
    const secret = 'canary-not-a-number-7731';
    const result = await sealpost(['config', 'check', '--service', 'audit'], {
      SEALPOST_DRAIN_SECONDS: secret,
      SEALPOST_DATA_DIR: dataDir,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('SEALPOST_DRAIN_SECONDS');
    expect(result.stderr).not.toContain(secret);
  }, 30_000);
});
