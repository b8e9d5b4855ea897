import { StorageError } from './errors';
import { refuseNewerDatabase, validateMigrations } from './migration-plan';

describe('validateMigrations', () => {
  it('returns the highest version of a valid list (0 for none)', () => {
    expect(validateMigrations([])).toBe(0);
    expect(
      validateMigrations([
        { version: 1, name: 'a' },
        { version: 2, name: 'b' },
        { version: 7, name: 'c' },
      ]),
    ).toBe(7);
  });

  it.each([
    ['a zero version', [{ version: 0, name: 'a' }], /not a positive integer/],
    ['a fractional version', [{ version: 1.5, name: 'a' }], /not a positive integer/],
    [
      'a duplicate',
      [
        { version: 1, name: 'a' },
        { version: 1, name: 'b' },
      ],
      /unique and increasing: 1 follows 1/,
    ],
    [
      'a decreasing list',
      [
        { version: 2, name: 'a' },
        { version: 1, name: 'b' },
      ],
      /1 follows 2/,
    ],
    ['an empty name', [{ version: 1, name: ' ' }], /has no name/],
  ])('rejects %s', (_label, list, message) => {
    expect(() => validateMigrations(list)).toThrow(message);
    expect(() => validateMigrations(list)).toThrow(expect.objectContaining({ code: 'STORAGE_MIGRATION_INVALID' }));
  });
});

describe('refuseNewerDatabase', () => {
  it('accepts an older or equal database', () => {
    expect(() => refuseNewerDatabase('db x', 3, 3)).not.toThrow();
    expect(() => refuseNewerDatabase('db x', 0, 3)).not.toThrow();
  });

  it('refuses a newer database naming both versions', () => {
    let caught: unknown;
    try {
      refuseNewerDatabase('db x', 4, 3);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StorageError);
    expect((caught as StorageError).code).toBe('STORAGE_MIGRATION_NEWER');
    expect((caught as StorageError).message).toMatch(/db x is at migration version 4 but this code knows only up to 3/);
  });
});
