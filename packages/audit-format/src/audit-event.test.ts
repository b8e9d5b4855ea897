import { auditEventsV1 } from '@sealpost/proto';
import {
  type AuditEventMessage,
  AuditEventRejectedError,
  type AuditEventRejection,
  auditActionToken,
  entryFromAuditEvent,
} from './audit-event';
import { encodeAuditEntry } from './canonical-entry';

const ID = '01J9Z6V4QX8R2M3N4P5Q6R7S8T';

function message(
  fields: Partial<auditEventsV1.AuditEvent> = {},
  subject = 'sealpost.audit.contact-vault.tenant-42.contact_erase',
): AuditEventMessage {
  const payload = auditEventsV1.AuditEvent.encode({
    eventId: ID,
    tenantId: 'tenant-42',
    action: 'contact.erase',
    actor: { $case: 'operatorId', value: 'op-7f3a' },
    resourceIds: ['ct_1001', 'er_2002'],
    purposeCode: 'dsr.erasure',
    ticketRef: 'DSR-77',
    outcome: 'succeeded',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    occurredAt: new Date(1_767_225_600_123),
    ...fields,
  }).finish();
  return { id: ID, subject, payload };
}

function rejected(m: AuditEventMessage, reason: AuditEventRejection): AuditEventRejectedError {
  let thrown: unknown;
  try {
    entryFromAuditEvent(m);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AuditEventRejectedError);
  expect((thrown as AuditEventRejectedError).reason).toBe(reason);
  return thrown as AuditEventRejectedError;
}

describe('entryFromAuditEvent', () => {
  it('takes the source service from the subject and the id from the envelope', () => {
    expect(entryFromAuditEvent(message())).toEqual({
      entryId: ID,
      sourceService: 'contact-vault',
      tenantId: 'tenant-42',
      action: 'contact.erase',
      actorKind: 'operator',
      actorId: 'op-7f3a',
      resourceIds: ['ct_1001', 'er_2002'],
      purposeCode: 'dsr.erasure',
      ticketRef: 'DSR-77',
      outcome: 'succeeded',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      occurredAt: 1_767_225_600_123,
    });
    expect(entryFromAuditEvent(message({ actor: { $case: 'service', value: 'dispatch' } }))).toMatchObject({
      actorKind: 'service',
      actorId: 'dispatch',
    });
  });

  it('yields the canonical bytes the log hashes, laid out as specified', () => {
    // Written out from the encoding's specification (canonical-entry.ts), not from the encoder: a publisher and the
    // log must agree on these bytes for a receipt's leaf hash to match.
    const str = (s: string): string =>
      Buffer.byteLength(s).toString(16).padStart(8, '0') + Buffer.from(s).toString('hex');
    const expected =
      '01' +
      [ID, 'contact-vault', 'tenant-42', 'contact.erase', 'operator', 'op-7f3a'].map(str).join('') +
      '00000002' +
      ['ct_1001', 'er_2002'].map(str).join('') +
      ['dsr.erasure', 'DSR-77', 'succeeded', '4bf92f3577b34da6a3ce929d0e0e4736'].map(str).join('') +
      (1_767_225_600_123).toString(16).padStart(16, '0');
    expect(encodeAuditEntry(entryFromAuditEvent(message())).toString('hex')).toBe(expected);
  });

  it('accepts an empty payload event id (the envelope id is the entry id)', () => {
    expect(entryFromAuditEvent(message({ eventId: '' })).entryId).toBe(ID);
  });

  it('refuses a subject that is not sealpost.audit.<source>.<tenant>.<action>', () => {
    rejected(message({}, 'sealpost.audit.contact-vault.tenant-42'), 'audit-bad-subject');
    rejected(message({}, 'sealpost.vault.contact-vault.tenant-42.contact_erase'), 'audit-bad-subject');
  });

  it('refuses a payload that is not an AuditEvent', () => {
    rejected({ ...message(), payload: Uint8Array.from([0xff, 0xff, 0xff]) }, 'audit-bad-protobuf');
  });

  it('refuses a payload that disagrees with the subject or the envelope, naming the fields', () => {
    const err = rejected(
      message({ tenantId: 'tenant-43', action: 'contact.reveal', eventId: 'another-id' }),
      'audit-subject-mismatch',
    );
    expect(err.fields).toEqual(['tenantId', 'action', 'eventId']);
  });

  it('refuses personal data without echoing it', () => {
    const email = 'jane.doe@example.com';
    const err = rejected(message({ resourceIds: ['ct_1001', email] }), 'audit-invalid-entry');
    expect(err.fields).toEqual(['resourceIds[1]']);
    expect(err.message).not.toContain(email);
    expect(JSON.stringify(err)).not.toContain(email);
  });

  it('refuses an event without an actor or a time', () => {
    const err = rejected(message({ actor: undefined, occurredAt: undefined }), 'audit-invalid-entry');
    expect(err.fields).toEqual(expect.arrayContaining(['actorKind', 'occurredAt']));
  });
});

it('auditActionToken turns the dots of an action into underscores (subject tokens hold no dots)', () => {
  expect(auditActionToken('contact.erase')).toBe('contact_erase');
  expect(auditActionToken('key.rotate.index')).toBe('key_rotate_index');
});
