import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderConfigTable } from '../src/index';

describe('README configuration table', () => {
  it('is exactly the table generated from the settings the code reads', () => {
    const readme = readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    const section = /<!-- config-table:start -->\n([\s\S]*?)<!-- config-table:end -->/.exec(readme);
    expect(section).not.toBeNull();
    // Regenerate with: pnpm exec tsx scripts/config-table.ts
    expect(section![1]!.trim()).toBe(renderConfigTable().trim());
  });
});
