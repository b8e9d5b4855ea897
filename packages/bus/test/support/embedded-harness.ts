/** The embedded adapter under test: one bus file per test file, handles per service. */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DEAD_LETTER_STREAM, EmbeddedBus, streamSpec, subjectMatches } from '../../src/index';
import { TEST_STREAMS, type BusHarness } from './harness';

export function embeddedHarness(dir: string): BusHarness {
  const file = join(dir, 'bus.sqlite');
  const bus = EmbeddedBus.open(file, { streams: TEST_STREAMS, pollIntervalMs: 50 });
  return {
    system: 'embedded',
    open: async (service) => bus.forService(service),
    childConfig: () => ({ kind: 'embedded', file, streams: TEST_STREAMS }),
    async injectRaw(subject, payload, headers, msgId) {
      // Straight into the file, as a foreign or buggy writer would: the publisher's checks are bypassed.
      const db = new Database(file);
      try {
        const stream = ['vault', 'consent']
          .map((d) => streamSpec(d as 'vault'))
          .find((s) => subjectMatches(s.subjects[0]!, subject));
        if (stream === undefined) throw new Error('no stream for injected subject');
        db.transaction(() => {
          const { last_seq } = db.prepare('SELECT last_seq FROM streams WHERE name = ?').get(stream.name) as {
            last_seq: number;
          };
          db.prepare(
            'INSERT INTO messages (stream, seq, subject, headers, payload, stored_at) VALUES (?, ?, ?, ?, ?, ?)',
          ).run(
            stream.name,
            last_seq + 1,
            subject,
            JSON.stringify({ ...headers, 'Nats-Msg-Id': msgId }),
            Buffer.from(payload),
            Date.now(),
          );
          db.prepare('UPDATE streams SET last_seq = ? WHERE name = ?').run(last_seq + 1, stream.name);
        }).immediate();
      } finally {
        db.close();
      }
    },
    deadLetters: async (subject) => bus.read(DEAD_LETTER_STREAM, { subject }),
    close: () => bus.close(),
  };
}
