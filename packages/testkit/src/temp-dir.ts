import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private temporary directory; `cleanup()` removes it and everything in it (idempotent). */
export interface TempDir {
  readonly path: string;
  cleanup(): void;
}

const open = new Set<TempDir>();

/**
 * Creates a fresh directory (mode 0700) under the OS temp dir. Call `cleanup()` in afterEach/afterAll, or
 * `cleanupTempDirs()` to remove every directory still open.
 */
export function tempDir(prefix = 'sealpost-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const dir: TempDir = {
    path,
    cleanup() {
      rmSync(path, { recursive: true, force: true });
      open.delete(dir);
    },
  };
  open.add(dir);
  return dir;
}

/** Removes every directory made by `tempDir()` in this test file and not cleaned up yet. */
export function cleanupTempDirs(): void {
  for (const dir of [...open]) dir.cleanup();
}
