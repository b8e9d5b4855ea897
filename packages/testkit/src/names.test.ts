import { UNIQUE_NAME, uniqueName } from './names';

describe('uniqueName', () => {
  it('returns distinct names that are safe as subject tokens, durable and database names', () => {
    const names = Array.from({ length: 2000 }, () => uniqueName('tenant'));
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(name).toMatch(UNIQUE_NAME);
      expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(name.startsWith('tenant_')).toBe(true);
    }
  });

  it('stays within 63 characters for the longest allowed prefix', () => {
    const name = uniqueName('p'.repeat(40));
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(UNIQUE_NAME);
  });

  it.each(['', 'has.dot', 'has space', 'wild*', 'gt>', 'p'.repeat(41), 'é'])('refuses prefix %p', (prefix) => {
    expect(() => uniqueName(prefix)).toThrow(RangeError);
  });
});
