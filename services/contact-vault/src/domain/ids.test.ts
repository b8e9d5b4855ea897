import { CONTACT_ID, newContactId } from './ids';

describe('newContactId', () => {
  it('gives well-formed, distinct ids across refills of its random pool, ordered by creation time', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => newContactId(1_700_000_000_000 + i));
    for (const id of ids) expect(id).toMatch(CONTACT_ID);
    expect(new Set(ids).size).toBe(ids.length);
    // No two ids share their random part either: each pooled byte is used once.
    expect(new Set(ids.map((id) => id.slice(12))).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});
