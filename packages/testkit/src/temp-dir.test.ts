import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, tempDir } from './temp-dir';

describe('tempDir', () => {
  afterAll(cleanupTempDirs);

  it('creates a private directory and removes it with its contents on cleanup', () => {
    const dir = tempDir();
    expect(statSync(dir.path).isDirectory()).toBe(true);
    expect(statSync(dir.path).mode & 0o777).toBe(0o700);
    writeFileSync(join(dir.path, 'file'), 'x');
    dir.cleanup();
    expect(existsSync(dir.path)).toBe(false);
    expect(() => dir.cleanup()).not.toThrow();
  });

  it('gives each call its own directory and cleanupTempDirs removes all that are still open', () => {
    const a = tempDir('sealpost-a-');
    const b = tempDir('sealpost-b-');
    expect(a.path).not.toBe(b.path);
    cleanupTempDirs();
    expect(existsSync(a.path)).toBe(false);
    expect(existsSync(b.path)).toBe(false);
  });
});
