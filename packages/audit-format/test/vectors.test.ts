import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

// src/merkle.test.ts reads the RFC 6962 vectors from this package's copy, so a clone alone runs them. The copy must stay
// the project's independently checked file (shared/vectors/rfc6962.json beside the repository).
describe('the RFC 6962 vectors this package tests against', () => {
  const shared = path.resolve(__dirname, '../../../../shared/vectors/rfc6962.json');
  const copy = path.resolve(__dirname, 'rfc6962.json');
  // CI always has shared/ beside its clone, so there the comparison runs (and fails if the file is missing); a lone
  // clone has nothing to compare with.
  const compare = existsSync(shared) || process.env.CI === 'true' ? it : it.skip;
  compare('are the shared, independently checked file, byte for byte', () => {
    expect(readFileSync(copy)).toEqual(readFileSync(shared));
  });
});
