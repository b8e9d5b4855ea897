import { createHash } from 'node:crypto';
import { findForbidden, forbiddenForms } from './support/canaries';

// The scanner itself must be able to fail, or the canary tests prove nothing.
describe('canary scanner', () => {
  it('finds a value, its SHA-256 hex and base64 inside binary noise, and nothing in clean bytes', () => {
    const value = 'cny.person001@vault-canary.example';
    const needles = forbiddenForms([value]);
    const digest = createHash('sha256').update(value).digest();
    for (const planted of [
      Buffer.from(value),
      Buffer.from(digest.toString('hex')),
      Buffer.from(digest.toString('base64')),
    ]) {
      const hay = Buffer.concat([Buffer.from([0, 255, 7]), planted, Buffer.from([1, 2])]);
      expect(findForbidden(hay, needles).length).toBeGreaterThan(0);
    }
    expect(findForbidden(Buffer.from('cny.person002@vault-canary.example'), needles)).toEqual([]);
  });
});
