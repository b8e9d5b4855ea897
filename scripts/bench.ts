/**
 * `pnpm bench <name>` runs bench/<name>.ts. Each benchmark prints its figures beside a same-run baseline
 * and writes bench/results/<name>.json; goals are reported, never asserted.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

const benchDir = path.resolve(__dirname, '../bench');
const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -3))
  .filter((name) => !name.startsWith('_'));

const name = process.argv[2];
if (!name || name === '--help' || !available.includes(name)) {
  const stream = name && name !== '--help' ? process.stderr : process.stdout;
  stream.write(`usage: pnpm bench <name>\n\nbenchmarks: ${available.join(', ') || '(none yet)'}\n`);
  process.exit(name && name !== '--help' ? 2 : 0);
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bench = require(path.join(benchDir, `${name}.ts`)) as { main: (args: string[]) => Promise<void> };
bench.main(process.argv.slice(3)).catch((error: unknown) => {
  process.stderr.write(`bench ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
