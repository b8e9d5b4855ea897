import {
  type AuditEntry,
  AuditEntryError,
  assertValidAuditEntry,
  decodeAuditEntry,
  encodeAuditEntry,
  validateAuditEntry,
} from './canonical-entry';

const entry: AuditEntry = {
  entryId: '01J9Z6V4QX8R2M3N4P5Q6R7S8T',
  sourceService: 'contact-vault',
  tenantId: 'tenant-42',
  action: 'contact.reveal',
  actorKind: 'operator',
  actorId: 'op:7f3a',
  resourceIds: ['ct_1001', 'ct_1002'],
  purposeCode: 'support.case',
  ticketRef: 'SEC-1234',
  outcome: 'granted',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  occurredAt: 1_767_225_600_123,
};

/** Asserts a refusal names `field` with `code` and that no secret value shows up anywhere in the result. */
function expectRefused(input: unknown, field: string, code: string, secret?: string): void {
  const result = validateAuditEntry(input);
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.issues).toContainEqual(expect.objectContaining({ field, code }));
  for (const issue of result.issues) expect(issue.message.startsWith(`${issue.field}:`)).toBe(true);
  if (secret !== undefined) expect(JSON.stringify(result)).not.toContain(secret);
  let thrown: unknown;
  try {
    assertValidAuditEntry(input);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(AuditEntryError);
  expect((thrown as AuditEntryError).code).toBe('INVALID_AUDIT_ENTRY');
  expect((thrown as AuditEntryError).message).toContain(field);
  if (secret !== undefined) expect((thrown as AuditEntryError).message).not.toContain(secret);
}

function expectMalformed(bytes: Uint8Array, code = 'MALFORMED_AUDIT_ENTRY'): void {
  let thrown: unknown;
  try {
    decodeAuditEntry(bytes);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(AuditEntryError);
  expect((thrown as AuditEntryError).code).toBe(code);
}

describe('canonical encoding', () => {
  it('lays out version, length-prefixed fields in fixed order, list count and u64 time', () => {
    const small: AuditEntry = {
      entryId: 'e',
      sourceService: 's',
      tenantId: 't',
      action: 'a',
      actorKind: 'service',
      actorId: 'x',
      resourceIds: ['r1', 'r2'],
      purposeCode: '',
      ticketRef: '',
      outcome: 'failed',
      traceId: '',
      occurredAt: 258,
    };
    const str = (s: string): string =>
      Buffer.byteLength(s).toString(16).padStart(8, '0') + Buffer.from(s).toString('hex');
    const expected =
      '01' +
      ['e', 's', 't', 'a', 'service', 'x'].map(str).join('') +
      '00000002' +
      str('r1') +
      str('r2') +
      ['', '', 'failed', ''].map(str).join('') +
      '0000000000000102';
    expect(encodeAuditEntry(small).toString('hex')).toBe(expected);
  });

  it('round-trips exactly: decode(encode(e)) = e and encode(decode(b)) = b', () => {
    const variants: AuditEntry[] = [
      entry,
      { ...entry, resourceIds: [], purposeCode: '', ticketRef: '', traceId: '', actorKind: 'service' },
      { ...entry, resourceIds: Array.from({ length: 1000 }, (_, i) => `ct_${i}`), occurredAt: Number.MAX_SAFE_INTEGER },
      { ...entry, occurredAt: 0, outcome: 'succeeded' },
      // The encoding itself is byte-exact for any well-formed Unicode; content rules are validateAuditEntry's job.
      { ...entry, tenantId: 'tenant-é-日本-😀' },
    ];
    for (const e of variants) {
      const bytes = encodeAuditEntry(e);
      expect(decodeAuditEntry(bytes)).toEqual(e);
      expect(encodeAuditEntry(decodeAuditEntry(bytes)).equals(bytes)).toBe(true);
    }
  });

  it('gives different bytes for different entries, including moved boundaries and reordered resources', () => {
    const a = encodeAuditEntry({ ...entry, entryId: 'ab', sourceService: 'c' });
    const b = encodeAuditEntry({ ...entry, entryId: 'a', sourceService: 'bc' });
    expect(a.equals(b)).toBe(false);
    const c = encodeAuditEntry({ ...entry, resourceIds: ['ct_1002', 'ct_1001'] });
    expect(c.equals(encodeAuditEntry(entry))).toBe(false);
  });

  it('refuses every truncation and any trailing byte', () => {
    const bytes = encodeAuditEntry(entry);
    for (let len = 0; len < bytes.length; len++) expectMalformed(bytes.subarray(0, len));
    expectMalformed(Buffer.concat([bytes, Buffer.from([0])]));
  });

  it('refuses unknown versions, invalid UTF-8, unknown enum values and absurd counts', () => {
    const bytes = encodeAuditEntry(entry);
    const v2 = Buffer.from(bytes);
    v2[0] = 2;
    expectMalformed(v2, 'UNSUPPORTED_AUDIT_ENTRY_VERSION');

    const badUtf8 = Buffer.from(encodeAuditEntry({ ...entry, entryId: 'ab' }));
    badUtf8[1 + 4] = 0xff; // first byte of entryId
    expectMalformed(badUtf8);

    const oddKind = encodeAuditEntry({ ...entry, actorKind: 'robot' as AuditEntry['actorKind'] });
    expectMalformed(oddKind);
    const oddOutcome = encodeAuditEntry({ ...entry, outcome: 'maybe' as AuditEntry['outcome'] });
    expectMalformed(oddOutcome);

    const small = encodeAuditEntry({ ...entry, resourceIds: [] });
    const countAt =
      1 +
      ['entryId', 'sourceService', 'tenantId', 'action', 'actorKind', 'actorId']
        .map((f) => 4 + Buffer.byteLength(entry[f as keyof AuditEntry] as string))
        .reduce((x, y) => x + y, 0);
    const huge = Buffer.from(small);
    huge.writeUInt32BE(0xffffffff, countAt);
    expectMalformed(huge);

    const tooLate = Buffer.from(small);
    tooLate.writeBigUInt64BE(BigInt(Number.MAX_SAFE_INTEGER) + 1n, tooLate.length - 8);
    expectMalformed(tooLate);
  });

  it('refuses structurally bad entries when encoding', () => {
    expect(() => encodeAuditEntry({ ...entry, occurredAt: 1.5 })).toThrow(AuditEntryError);
    expect(() => encodeAuditEntry({ ...entry, occurredAt: -1 })).toThrow(AuditEntryError);
    expect(() => encodeAuditEntry({ ...entry, tenantId: 'x\uD800y' })).toThrow(/tenantId/);
    expect(() => encodeAuditEntry({ ...entry, resourceIds: 'ct_1' as unknown as string[] })).toThrow(/resourceIds/);
  });
});

describe('validateAuditEntry', () => {
  it('accepts a well-formed entry and returns a clean copy', () => {
    const result = validateAuditEntry(entry);
    expect(result).toEqual({ ok: true, entry });
    if (result.ok) expect(result.entry).not.toBe(entry);
    expect(validateAuditEntry({ ...entry, purposeCode: '', ticketRef: '', traceId: '' }).ok).toBe(true);
    expect(validateAuditEntry({ ...entry, actorId: 'svc@dispatch', resourceIds: ['urn:sealpost:ct/1'] }).ok).toBe(true);
    // Long numeric ids are not phone numbers (too many digits for E.164).
    expect(validateAuditEntry({ ...entry, entryId: '1234567890123456789' }).ok).toBe(true);
  });

  it.each([
    ['entryId', 'jane.doe@example.com', 'LOOKS_LIKE_EMAIL'],
    ['actorId', 'ops@corp.example', 'LOOKS_LIKE_EMAIL'],
    ['tenantId', '+14155550123', 'LOOKS_LIKE_PHONE'],
    ['entryId', '4155550123', 'LOOKS_LIKE_PHONE'],
    ['actorId', '+44 20 7946 0958', 'LOOKS_LIKE_PHONE'],
    ['tenantId', 'call me maybe', 'PATTERN'],
    ['entryId', 'x'.repeat(129), 'PATTERN'],
    ['action', 'Reveal', 'PATTERN'],
    ['action', 'reveal contact', 'PATTERN'],
    ['sourceService', 'Vault', 'PATTERN'],
    ['purposeCode', 'because the customer asked', 'PATTERN'],
    ['ticketRef', 'see slack thread', 'PATTERN'],
    ['ticketRef', 'sec-12', 'PATTERN'],
    ['traceId', 'not-a-trace', 'PATTERN'],
    ['entryId', '', 'REQUIRED'],
  ])('refuses %s = %j with %s, naming the field and not echoing the value', (field, value, code) => {
    expectRefused({ ...entry, [field]: value }, field, code, value || undefined);
  });

  it('names the offending resource id by position', () => {
    expectRefused(
      { ...entry, resourceIds: ['ct_1', 'bob@example.org'] },
      'resourceIds[1]',
      'LOOKS_LIKE_EMAIL',
      'bob@example.org',
    );
    expectRefused(
      { ...entry, resourceIds: ['ct_1', '+33 6 12 34 56 78'] },
      'resourceIds[1]',
      'LOOKS_LIKE_PHONE',
      '12 34',
    );
  });

  it('refuses more than 1000 resource ids, bad enums, bad times and free-text extra fields', () => {
    expectRefused(
      { ...entry, resourceIds: Array.from({ length: 1001 }, (_, i) => `ct_${i}`) },
      'resourceIds',
      'TOO_MANY',
    );
    expectRefused({ ...entry, actorKind: 'admin' }, 'actorKind', 'NOT_ALLOWED', 'admin');
    expectRefused({ ...entry, outcome: 'ok' }, 'outcome', 'NOT_ALLOWED');
    expectRefused({ ...entry, occurredAt: 1.5 }, 'occurredAt', 'TYPE');
    expectRefused({ ...entry, occurredAt: '2026-01-01' }, 'occurredAt', 'TYPE', '2026-01-01');
    expectRefused({ ...entry, occurredAt: -5 }, 'occurredAt', 'PATTERN');
    expectRefused({ ...entry, note: 'customer Jane called about her order' }, 'note', 'UNKNOWN_FIELD', 'Jane');
    expectRefused({ ...entry, 'jane@example.com': 1 }, '(unnamed field)', 'UNKNOWN_FIELD', 'jane@example.com');
    expectRefused({ ...entry, resourceIds: 'ct_1' }, 'resourceIds', 'TYPE');
    expectRefused({ ...entry, actorId: 42 }, 'actorId', 'TYPE');
    expect(validateAuditEntry(null).ok).toBe(false);
    expect(validateAuditEntry([entry]).ok).toBe(false);
  });

  it('reports every bad field at once', () => {
    const result = validateAuditEntry({ ...entry, entryId: 'a b', action: 'X', outcome: 'nope' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.field).sort()).toEqual(['action', 'entryId', 'outcome']);
  });

  it('takes patterns and the purpose list as parameters', () => {
    const rules = {
      ticketRefPattern: /^INC[0-9]{6}$/,
      allowedPurposeCodes: new Set(['support.case']),
      idPattern: /^[a-z0-9_:-]{1,64}$/g, // a /g flag must not make results depend on call order
    };
    const lower = { ...entry, entryId: 'e_1', actorId: 'op:7f3a', resourceIds: ['ct_1'] };
    expect(validateAuditEntry({ ...lower, ticketRef: 'INC000123' }, rules).ok).toBe(true);
    expect(validateAuditEntry({ ...lower, ticketRef: 'INC000123' }, rules).ok).toBe(true);
    const wrongTicket = validateAuditEntry({ ...lower, ticketRef: 'SEC-1234' }, rules);
    expect(wrongTicket.ok === false && wrongTicket.issues[0]!.field).toBe('ticketRef');
    const wrongPurpose = validateAuditEntry({ ...lower, ticketRef: '', purposeCode: 'marketing' }, rules);
    expect(wrongPurpose.ok === false && wrongPurpose.issues[0]).toMatchObject({
      field: 'purposeCode',
      code: 'NOT_ALLOWED',
    });
    const upper = validateAuditEntry({ ...lower, ticketRef: '', entryId: 'E_1' }, rules);
    expect(upper.ok === false && upper.issues[0]!.field).toBe('entryId');
  });
});
