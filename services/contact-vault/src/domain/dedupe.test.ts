import { decideDedupe, dedupeKeyFirst } from './dedupe';

const email = { dedupeKey: 'email' as const };
const kinds =
  (map: Record<string, string[]>) =>
  (id: string): string[] =>
    map[id] ?? [];

describe('decideDedupe', () => {
  it('creates when no value is owned', () => {
    expect(
      decideDedupe(
        email,
        [
          { fieldKind: 'email', contactId: undefined },
          { fieldKind: 'phone', contactId: undefined },
        ],
        kinds({}),
      ),
    ).toEqual({ kind: 'create' });
  });

  it('updates the contact owning the dedupe key', () => {
    expect(
      decideDedupe(
        email,
        [
          { fieldKind: 'email', contactId: 'A' },
          { fieldKind: 'phone', contactId: undefined },
        ],
        kinds({ A: ['email'] }),
      ),
    ).toEqual({ kind: 'update', contactId: 'A' });
  });

  it('reports a conflict (naming the phone) when email and phone belong to different contacts', () => {
    expect(
      decideDedupe(
        email,
        [
          { fieldKind: 'email', contactId: 'A' },
          { fieldKind: 'phone', contactId: 'B' },
        ],
        kinds({ A: ['email'], B: ['phone'] }),
      ),
    ).toEqual({ kind: 'conflict', field: 'phone' });
  });

  it('adds an email to a phone-only contact found by its phone', () => {
    expect(
      decideDedupe(
        email,
        [
          { fieldKind: 'email', contactId: undefined },
          { fieldKind: 'phone', contactId: 'B' },
        ],
        kinds({ B: ['phone'] }),
      ),
    ).toEqual({ kind: 'update', contactId: 'B' });
  });

  it('refuses a new email whose phone belongs to a contact that has another email', () => {
    expect(
      decideDedupe(
        email,
        [
          { fieldKind: 'email', contactId: undefined },
          { fieldKind: 'phone', contactId: 'B' },
        ],
        kinds({ B: ['email', 'phone'] }),
      ),
    ).toEqual({ kind: 'conflict', field: 'phone' });
  });

  it('follows a phone dedupe key', () => {
    expect(
      decideDedupe(
        { dedupeKey: 'phone' },
        [
          { fieldKind: 'email', contactId: 'A' },
          { fieldKind: 'phone', contactId: undefined },
        ],
        kinds({ A: ['email', 'phone'] }),
      ),
    ).toEqual({ kind: 'conflict', field: 'email' });
  });
});

describe('dedupeKeyFirst', () => {
  const index = (fieldKind: 'email' | 'phone', keyVersion: number) => ({
    fieldKind,
    keyVersion,
    normVersion: 1,
    value: `${fieldKind}-${keyVersion}`,
  });

  it('puts the dedupe key kind first, each group in its order, in place', () => {
    const indexes = [index('email', 2), index('phone', 2), index('email', 1), index('phone', 1)];
    const ordered = dedupeKeyFirst(indexes, 'phone');
    expect(ordered).toBe(indexes);
    expect(ordered.map((i) => i.value)).toEqual(['phone-2', 'phone-1', 'email-2', 'email-1']);
    expect(dedupeKeyFirst(ordered, 'email').map((i) => i.value)).toEqual(['email-2', 'email-1', 'phone-2', 'phone-1']);
    expect(dedupeKeyFirst([], 'email')).toEqual([]);
  });
});
