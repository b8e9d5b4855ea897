import fs from 'node:fs';
import path from 'node:path';
import type { StoredTreeHead } from '../../ports/audit-log-store';
import type { TreeHeadWitness } from '../../ports/witness';

/** Witness appending one JSON line per signed tree head to a file (fsynced), outside the database. */
export class FileWitness implements TreeHeadWitness {
  readonly kind = 'file';

  constructor(readonly file: string) {}

  async record(head: StoredTreeHead): Promise<void> {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(this.file, 'a', 0o600);
    try {
      fs.writeSync(fd, `${JSON.stringify(head)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The last complete line (a torn last line from a crash is skipped). */
  async latest(): Promise<StoredTreeHead | undefined> {
    if (!fs.existsSync(this.file)) return undefined;
    const lines = fs.readFileSync(this.file, 'utf8').split('\n').filter(Boolean);
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return JSON.parse(lines[i]!) as StoredTreeHead;
      } catch {
        continue;
      }
    }
    return undefined;
  }
}

/**
 * Reads a trusted tree head from a file: one JSON head, or a witness JSON-lines file (its last complete line).
 * Throws if the file holds neither.
 */
export function readTreeHeadFile(file: string): StoredTreeHead {
  const text = fs.readFileSync(file, 'utf8').trim();
  try {
    return JSON.parse(text) as StoredTreeHead;
  } catch {
    const lines = text.split('\n').filter(Boolean);
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return JSON.parse(lines[i]!) as StoredTreeHead;
      } catch {
        continue;
      }
    }
  }
  throw new Error(`${file} holds no tree head (JSON or JSON lines)`);
}
