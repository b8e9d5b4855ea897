import {
  backoffFor,
  deadLetterMessage,
  resolveConsumeOptions,
  settleBeforeHandling,
  settleFailure,
} from './delivery-policy';
import { HEADERS } from './envelope';
import { ConsumeNotAllowedError, InvalidBusOptionsError, PoisonMessageError } from './errors';

describe('resolveConsumeOptions', () => {
  it('applies defaults and derives the stream and filter from the domain', () => {
    const o = resolveConsumeOptions('dispatch', { durable: 'dispatch-consent', domain: 'consent' });
    expect(o).toMatchObject({
      stream: 'SEALPOST_CONSENT',
      filterSubjects: ['sealpost.consent.>'],
      maxDeliver: 5,
      ackWaitMs: 30000,
      batch: 32,
      maxAckPending: 128,
    });
  });

  it('refuses a domain outside the grant', () => {
    expect(() => resolveConsumeOptions('contact-vault', { durable: 'x', domain: 'consent' })).toThrow(
      ConsumeNotAllowedError,
    );
  });

  it('refuses filters outside the domain and bad numbers', () => {
    expect(() =>
      resolveConsumeOptions('dispatch', { durable: 'x', domain: 'consent', filterSubjects: ['sealpost.vault.>'] }),
    ).toThrow(InvalidBusOptionsError);
    expect(() => resolveConsumeOptions('dispatch', { durable: 'x', domain: 'consent', maxDeliver: 0 })).toThrow(
      'maxDeliver must be ≥ 1',
    );
    expect(() => resolveConsumeOptions('dispatch', { durable: 'a.b', domain: 'consent' })).toThrow(RangeError);
  });
});

describe('settling', () => {
  const options = resolveConsumeOptions('dispatch', {
    durable: 'd',
    domain: 'consent',
    maxDeliver: 3,
    backoffMs: [100, 400],
  });

  it('backs off per delivery, repeating the last step', () => {
    expect([1, 2, 3, 9].map((n) => backoffFor(n, [100, 400]))).toEqual([100, 400, 400, 400]);
    expect(backoffFor(2, [])).toBe(0);
  });

  it('retries until the bound, then dead-letters', () => {
    const boom = new Error('boom');
    expect(settleFailure(boom, 1, options)).toEqual({ kind: 'retry', delayMs: 100 });
    expect(settleFailure(boom, 2, options)).toEqual({ kind: 'retry', delayMs: 400 });
    expect(settleFailure(boom, 3, options)).toEqual({ kind: 'dead-letter', reason: 'max-deliveries' });
  });

  it('dead-letters poison at once with a sanitised reason', () => {
    expect(settleFailure(new PoisonMessageError('bad schema/v9'), 1, options)).toEqual({
      kind: 'dead-letter',
      reason: 'poison:bad_schema_v9',
    });
  });

  it('dead-letters a delivery beyond the bound without running the handler', () => {
    expect(settleBeforeHandling(3, 3)).toBeNull();
    expect(settleBeforeHandling(4, 3)).toEqual({ kind: 'dead-letter', reason: 'max-deliveries' });
  });
});

describe('deadLetterMessage', () => {
  it('keeps payload and headers, records the origin, and uses its own deterministic msg id', () => {
    const raw = {
      subject: 'sealpost.consent.t-1.confirmed',
      payload: new Uint8Array([9]),
      headers: { [HEADERS.msgId]: 'evt-123456', traceparent: 'tp' },
      stream: 'SEALPOST_CONSENT',
      streamSeq: 17,
      deliveries: 3,
    };
    const dl = deadLetterMessage('dispatch', 'dispatch-consent', raw, 'max-deliveries');
    expect(dl.subject).toBe('sealpost.deadletter.dispatch.dispatch-consent');
    expect(dl.msgId).toBe('dl-dispatch-consent-SEALPOST_CONSENT-17');
    expect(dl.payload).toBe(raw.payload);
    expect(dl.headers).toEqual({
      traceparent: 'tp',
      [HEADERS.deadLetterEventId]: 'evt-123456',
      [HEADERS.deadLetterSubject]: raw.subject,
      [HEADERS.deadLetterStream]: 'SEALPOST_CONSENT',
      [HEADERS.deadLetterSeq]: '17',
      [HEADERS.deadLetterReason]: 'max-deliveries',
      [HEADERS.deadLetterDeliveries]: '3',
      [HEADERS.deadLetterConsumer]: 'dispatch-consent',
    });
  });
});
