import Database from 'better-sqlite3';
import { decideApply, mongoApplyOnceFilter, mongoApplyOnceUpdate, nextMarker, sqliteApplyOnce } from './apply-once';

describe('decideApply', () => {
  it('applies only newer versions and unseen ids', () => {
    expect(decideApply(undefined, { id: 'a', aggregateVersion: 1 })).toEqual({ apply: true });
    expect(decideApply({ version: 2 }, { id: 'b', aggregateVersion: 3 })).toEqual({ apply: true });
    expect(decideApply({ version: 2 }, { id: 'b', aggregateVersion: 2 })).toEqual({
      apply: false,
      reason: 'stale-version',
    });
    expect(decideApply({ version: 5 }, { id: 'b', aggregateVersion: 1 })).toEqual({
      apply: false,
      reason: 'stale-version',
    });
    expect(decideApply({ eventIds: ['x'] }, { id: 'x', aggregateVersion: 9 })).toEqual({
      apply: false,
      reason: 'already-applied',
    });
  });

  it('keeps a bounded id list and the highest version', () => {
    let marker = nextMarker(undefined, { id: 'e1', aggregateVersion: 1 }, 2);
    marker = nextMarker(marker, { id: 'e2', aggregateVersion: 3 }, 2);
    marker = nextMarker(marker, { id: 'e3', aggregateVersion: 2 }, 2);
    expect(marker).toEqual({ version: 3, eventIds: ['e2', 'e3'] });
  });
});

describe('mongo helpers', () => {
  it('builds the conditional filter and puts the marker in the same update', () => {
    expect(mongoApplyOnceFilter('c1', 4)).toEqual({
      _id: 'c1',
      $or: [{ appliedVersion: { $lt: 4 } }, { appliedVersion: { $exists: false } }],
    });
    expect(mongoApplyOnceUpdate({ $set: { state: 'revoked' }, $inc: { n: 1 } }, 4)).toEqual({
      $set: { state: 'revoked', appliedVersion: 4 },
      $inc: { n: 1 },
    });
  });
});

describe('sqliteApplyOnce', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE consents (id TEXT PRIMARY KEY, state TEXT, applied_version INTEGER)');
  const apply = (version: number, state: string) =>
    sqliteApplyOnce(db, { table: 'consents' }, 'c1', version, (d) =>
      d
        .prepare('INSERT INTO consents (id, state) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state')
        .run('c1', state),
    );
  const row = () => db.prepare('SELECT state, applied_version AS v FROM consents WHERE id = ?').get('c1');

  it('applies newer versions and ignores an older one delivered late', () => {
    expect(apply(1, 'pending')).toBe(true);
    expect(apply(3, 'revoked')).toBe(true);
    expect(apply(2, 'confirmed')).toBe(false);
    expect(apply(3, 'revoked-again')).toBe(false);
    expect(row()).toEqual({ state: 'revoked', v: 3 });
  });

  it('rolls back the effect when the marker row is missing', () => {
    db.exec('CREATE TABLE other (id TEXT PRIMARY KEY, applied_version INTEGER)');
    const call = () =>
      sqliteApplyOnce(db, { table: 'other' }, 'x', 1, (d) =>
        d.prepare("INSERT INTO consents (id) VALUES ('leak')").run(),
      );
    expect(call).toThrow('apply-once effect did not create the marked row');
    expect(db.prepare("SELECT count(*) AS n FROM consents WHERE id = 'leak'").get()).toEqual({ n: 0 });
  });

  it('refuses identifiers that are not plain names', () => {
    expect(() => sqliteApplyOnce(db, { table: 'x; DROP TABLE consents' }, 'c1', 9, () => undefined)).toThrow(
      'invalid SQL identifier',
    );
  });
});
