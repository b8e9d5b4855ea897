import { createEnvelope } from '../envelope';
import { OutboxUpdateError, withPendingEvent, withPendingEvents } from './mongo-outbox';

const env = (version: number) =>
  createEnvelope({
    type: 'consent.confirmed',
    subject: 'sealpost.consent.t-1.confirmed',
    tenant: 't-1',
    aggregateId: 'c-1',
    aggregateVersion: version,
    payload: new Uint8Array([version]),
  });

describe('withPendingEvent', () => {
  it('adds the event with $push beside the state change', () => {
    const e = env(2);
    const update = withPendingEvent({ $set: { state: 'confirmed', version: 2 } }, e);
    expect(update.$set).toEqual({ state: 'confirmed', version: 2 });
    expect(update.$push).toEqual({
      outbox: { $each: [expect.objectContaining({ id: e.id, aggregateVersion: 2, payload: 'Ag==' })] },
    });
  });

  it('appends to an existing $push of the outbox, keeping order', () => {
    const [a, b, c] = [env(1), env(2), env(3)];
    const first = withPendingEvent({ $set: { x: 1 }, $push: { log: 'l' } }, a);
    const update = withPendingEvents(first, [b, c]);
    expect((update.$push as { outbox: { $each: { id: string }[] } }).outbox.$each.map((x) => x.id)).toEqual([
      a.id,
      b.id,
      c.id,
    ]);
    expect((update.$push as { log: string }).log).toBe('l');
  });

  it.each([
    ['a replacement document', { state: 'x' }],
    ['$set of the outbox', { $set: { outbox: [] } }],
    ['$set of an outbox element', { $set: { 'outbox.0': {} } }],
    ['$unset of the outbox', { $unset: { outbox: '' } }],
    ['$pull from the outbox', { $pull: { outbox: { id: 'x' } } }],
  ])('refuses %s', (_what, update) => {
    expect(() => withPendingEvent(update as never, env(1))).toThrow(OutboxUpdateError);
  });
});
