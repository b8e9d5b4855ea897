import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { REPO_ROOT, cleanupTempDirs, tempDir } from '../src/index';

// describeWithPeer registers suites, so its behaviour is observed from outside: a child jest run of a fixture.
function runFixture(env: NodeJS.ProcessEnv): { status: number | null; json: JestJson; stderr: string } {
  const jest = require.resolve('jest/bin/jest', { paths: [REPO_ROOT] });
  const out = join(tempDir().path, 'result.json');
  const fixture = '**/testkit/test/fixtures/needs-ses.fixture.ts';
  const child = spawnSync(
    process.execPath,
    [jest, '--config', join(REPO_ROOT, 'jest.config.js'), '--json', '--outputFile', out, '--testMatch', fixture],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, env: { ...withoutCi(process.env), ...env } },
  );
  return { status: child.status, json: JSON.parse(readFileSync(out, 'utf8')) as JestJson, stderr: child.stderr };
}

interface JestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: { message: string }[];
}

function withoutCi(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { CI: _ci, ...rest } = env;
  return rest;
}

describe('describeWithPeer', () => {
  afterAll(cleanupTempDirs);

  it('fails the suite under CI=true when the peer is missing, naming the peer', () => {
    const { status, json } = runFixture({ CI: 'true', SEALPOST_TEST_SES_ENDPOINT: 'none' });
    expect(status).toBe(1);
    expect(json.numFailedTests).toBe(1);
    expect(json.numPassedTests).toBe(0);
    expect(json.testResults[0]!.message).toContain('peer ses missing');
  });

  it('skips the suite outside CI and prints which peer is missing', () => {
    const { status, json, stderr } = runFixture({ SEALPOST_TEST_SES_ENDPOINT: 'none' });
    expect(status).toBe(0);
    expect(json.numPassedTests).toBe(0);
    expect(json.numPendingTests).toBe(1);
    expect(stderr).toContain('peer ses missing: skipped fixture suite');
  });

  describe('with the peer answering', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer((socket) => socket.end());
      port = await new Promise((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      );
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('runs the suite body, under CI too', () => {
      const { status, json, stderr } = runFixture({
        CI: 'true',
        SEALPOST_TEST_SES_ENDPOINT: `http://127.0.0.1:${port}`,
      });
      expect(status).toBe(0);
      expect(json.numPassedTests).toBe(1);
      expect(stderr).not.toContain('missing');
    });
  });
});
