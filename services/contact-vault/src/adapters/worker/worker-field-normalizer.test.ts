import { normalizeFields, type RawContactFields } from '../../domain';
import { WorkerFieldNormalizer } from './worker-field-normalizer';

const GB = { defaultRegion: 'GB' };
const ROWS: { fields: RawContactFields; policy: { defaultRegion?: string; foldEmailAliases?: boolean } }[] = [
  { fields: { email: ' Jane.Doe+news@GMAIL.com ', phone: '07911 123456', name: ' Jane ' }, policy: GB },
  { fields: { email: 'Jane.Doe+news@GMAIL.com' }, policy: { foldEmailAliases: true } },
  { fields: { email: 'user@bücher.example' }, policy: {} },
  { fields: { phone: '+1 415 555 2671' }, policy: {} },
  { fields: { email: 'not-an-email' }, policy: {} },
  { fields: { phone: '07911 123456' }, policy: {} }, // national number without a default region
  { fields: { name: 'only a name' }, policy: {} },
  { fields: { email: 'x@example.com', name: 'bad\u202ename' }, policy: {} },
];

function inThread(row: (typeof ROWS)[number]) {
  try {
    return normalizeFields(row.fields, row.policy);
  } catch {
    return undefined;
  }
}

describe('WorkerFieldNormalizer', () => {
  it('normalises on a worker thread exactly as the domain does; invalid rows are left to the caller', async () => {
    const normalizer = new WorkerFieldNormalizer();
    const workerOf = () => (normalizer as unknown as { worker?: unknown }).worker;
    try {
      // No thread until the first import needs one; until it is ready, rows are left to the caller (no waiting).
      expect(workerOf()).toBeUndefined();
      expect(await normalizer.normalizeMany(ROWS)).toEqual(ROWS.map(() => undefined));
      expect(workerOf()).toBeDefined();
      expect(await normalizer.whenReady()).toBe(true);
      const results = await normalizer.normalizeMany(ROWS);
      expect(results).toEqual(ROWS.map(inThread));
      // The invalid ones really are invalid, and valid ones came back normalised.
      expect(results.map((r) => r === undefined)).toEqual([false, false, false, false, true, true, true, true]);
      expect(results[0]).toEqual({ email: 'jane.doe+news@gmail.com', phone: '+447911123456', name: 'Jane' });
      // Concurrent requests are answered each with its own results.
      const [a, b] = await Promise.all([
        normalizer.normalizeMany(ROWS.slice(0, 2)),
        normalizer.normalizeMany(ROWS.slice(3, 4)),
      ]);
      expect(a).toEqual(ROWS.slice(0, 2).map(inThread));
      expect(b).toEqual([{ phone: '+14155552671' }]);
    } finally {
      await normalizer.close();
    }
  });

  it('fails safe: a worker that dies mid-request, or is gone, leaves every row to the caller; nothing hangs', async () => {
    const normalizer = new WorkerFieldNormalizer();
    expect(await normalizer.whenReady()).toBe(true);
    const inFlight = normalizer.normalizeMany(ROWS);
    const worker = (normalizer as unknown as { worker: { terminate(): Promise<number> } }).worker;
    await worker.terminate();
    const died = await inFlight;
    expect(ROWS.map((_, i) => died[i])).toEqual(ROWS.map(() => undefined));
    expect(await normalizer.normalizeMany(ROWS)).toEqual(ROWS.map(() => undefined));
    expect(await normalizer.whenReady()).toBe(false);
    await normalizer.close();
  });
});
