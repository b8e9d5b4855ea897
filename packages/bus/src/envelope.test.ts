import {
  HEADERS,
  createEnvelope,
  envelopeFromMessage,
  envelopeToHeaders,
  newEventId,
  parseEventSubject,
} from './envelope';
import { InvalidEnvelopeError, PayloadTooLargeError } from './errors';

const base = {
  type: 'consent.confirmed',
  subject: 'sealpost.consent.t-1.confirmed',
  tenant: 't-1',
  aggregateId: 'c-42',
  aggregateVersion: 3,
  payload: new Uint8Array([1, 2, 3]),
};

describe('newEventId', () => {
  it('is a version-7 UUID that sorts by creation time', () => {
    const a = newEventId(1_700_000_000_000);
    const b = newEventId(1_700_000_000_001);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
    expect(newEventId()).not.toBe(newEventId());
  });
});

describe('createEnvelope', () => {
  it('fills id and occurredAt and round-trips through wire headers', () => {
    const env = createEnvelope({ ...base, headers: { 'x-request-kind': 'api' } });
    const headers = envelopeToHeaders(env);
    expect(headers[HEADERS.msgId]).toBe(env.id);
    expect(headers[HEADERS.aggregateVersion]).toBe('3');
    const back = envelopeFromMessage(env.subject, env.payload, headers);
    expect(back).toEqual(env);
  });

  it.each([
    ['tenant differs from subject', { tenant: 't-2' }, 'subject tenant differs from envelope tenant'],
    ['version 0', { aggregateVersion: 0 }, 'aggregate version must be a positive integer'],
    ['fractional version', { aggregateVersion: 1.5 }, 'aggregate version must be a positive integer'],
    ['subject outside sealpost', { subject: 'other.consent.t-1.x' }, 'subject is not an event subject'],
    ['wildcard in subject', { subject: 'sealpost.consent.*.x' }, 'subject is not an event subject'],
    ['aggregate id with spaces', { aggregateId: 'a b' }, 'invalid aggregate id'],
    ['upper-case type', { type: 'Consent' }, 'invalid event type'],
    ['CRLF in a header', { headers: { 'x-a': 'v\r\nInjected: 1' } }, 'invalid header value'],
    ['reserved header', { headers: { 'Nats-Msg-Id': 'x' } }, 'invalid header name'],
  ])('refuses %s', (_what, override, message) => {
    const call = () => createEnvelope({ ...base, ...override } as typeof base);
    expect(call).toThrow(InvalidEnvelopeError);
    expect(call).toThrow(message);
  });

  it('parses a subject once and answers the same afterwards, valid or not', () => {
    const first = parseEventSubject('sealpost.consent.t-1.confirmed');
    expect(first).toEqual({ domain: 'consent', tenant: 't-1', event: 'confirmed' });
    expect(parseEventSubject('sealpost.consent.t-1.confirmed')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(parseEventSubject('sealpost.consent.t-1.confirmed.extra')).toBeNull();
    expect(parseEventSubject('sealpost.consent.t-1.confirmed.extra')).toBeNull();
  });

  it('accepts audit subjects with a source token', () => {
    expect(parseEventSubject('sealpost.audit.vault.t-1.reveal')).toEqual({
      domain: 'audit',
      source: 'vault',
      tenant: 't-1',
      event: 'reveal',
    });
    expect(parseEventSubject('sealpost.audit.t-1.reveal')).toBeNull();
  });

  it('accepts signed tree heads, the log id in the tenant position', () => {
    expect(parseEventSubject('sealpost.treehead.sealpost-audit.signed')).toEqual({
      domain: 'treehead',
      tenant: 'sealpost-audit',
      event: 'signed',
    });
    expect(parseEventSubject('sealpost.treehead.sealpost-audit.unsigned')).toBeNull();
    expect(parseEventSubject('sealpost.treehead.signed')).toBeNull();
    expect(parseEventSubject('sealpost.treehead.a.b.signed')).toBeNull();
  });
});

describe('envelopeFromMessage', () => {
  const env = createEnvelope(base);

  it('refuses a message without the envelope headers', () => {
    expect(() => envelopeFromMessage(env.subject, env.payload, { [HEADERS.msgId]: env.id })).toThrow(
      /^missing header /,
    );
  });

  it('refuses a payload over the limit', () => {
    expect(() => envelopeFromMessage(env.subject, new Uint8Array(11), envelopeToHeaders(env), 10)).toThrow(
      PayloadTooLargeError,
    );
  });

  it('refuses a non-numeric version header', () => {
    const headers = { ...envelopeToHeaders(env), [HEADERS.aggregateVersion]: '1e3' };
    expect(() => envelopeFromMessage(env.subject, env.payload, headers)).toThrow(InvalidEnvelopeError);
  });

  it('drops unknown odd headers instead of poisoning the event', () => {
    const headers = { ...envelopeToHeaders(env), 'Weird Header': 'x', 'x-ok': 'fine' };
    expect(envelopeFromMessage(env.subject, env.payload, headers).headers).toEqual({ ...env.headers, 'x-ok': 'fine' });
  });
});
