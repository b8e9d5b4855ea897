import { createSecretKey, randomBytes } from 'node:crypto';
import { generateDataKey } from './data-key';
import { DecryptionError } from './errors';
import { openRecord, readRecordHeader, RECORD_FORMAT_VERSION, sealRecord, type RecordKey } from './record-cipher';

const binding = { tenantId: 'tenant-a', contactId: 'contact-1' };
const fields = { email: 'jane@example.com', phone: '+447911123456', name: 'Jane Ø Doe' };

function recordKey(kekVersion = 3): RecordKey {
  return { ...generateDataKey(), kekVersion };
}

function expectTampered(open: () => unknown): void {
  let thrown: unknown;
  try {
    open();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(DecryptionError);
  expect((thrown as DecryptionError).code).toBe('RECORD_TAMPERED');
  expect((thrown as DecryptionError).message).toBe('Encrypted record failed authentication');
}

/** Re-encodes the header with other field names (same count), keeping nonce, tag and ciphertext. */
function relabel(record: Buffer, names: string[]): Buffer {
  const header = readRecordHeader(record);
  const oldHeaderLength = 1 + 16 + 4 + 1 + header.fieldNames.reduce((sum, name) => sum + 1 + name.length, 0);
  const parts = [record.subarray(0, 22)];
  for (const name of names) parts.push(Buffer.of(name.length), Buffer.from(name, 'latin1'));
  parts.push(record.subarray(oldHeaderLength));
  return Buffer.concat(parts);
}

describe('record cipher', () => {
  it('round-trips all fields of a contact in one record', () => {
    const key = recordKey();
    const record = sealRecord(binding, key, fields);
    expect(openRecord(binding, key, record)).toEqual(fields);
    expect(readRecordHeader(record)).toEqual({
      formatVersion: RECORD_FORMAT_VERSION,
      dataKeyId: key.dataKeyId,
      kekVersion: 3,
      fieldNames: ['email', 'name', 'phone'],
    });
  });

  it('keeps no plaintext in the record', () => {
    const record = sealRecord(binding, recordKey(), fields);
    for (const value of Object.values(fields)) {
      expect(record.includes(Buffer.from(value, 'utf8'))).toBe(false);
    }
  });

  it('leaves no plaintext in its buffers when the key is refused after the values were written', () => {
    const allocations = jest.spyOn(Buffer, 'allocUnsafe');
    try {
      expect(() => sealRecord(binding, { ...recordKey(), dataKeyId: 'not-a-data-key-id' }, fields)).toThrow(
        'Malformed data key id',
      );
      const buffers = allocations.mock.results.map((result) => result.value as Buffer);
      expect(buffers.length).toBeGreaterThan(0);
      for (const buffer of buffers) {
        for (const value of Object.values(fields)) expect(buffer.includes(Buffer.from(value, 'utf8'))).toBe(false);
      }
    } finally {
      allocations.mockRestore();
    }
  });

  it('uses a fresh random nonce for every write', () => {
    const key = recordKey();
    const nonces = new Set<string>();
    for (let i = 0; i < 200; i += 1) {
      const record = sealRecord(binding, key, fields);
      const headerLength =
        record.length - 12 - 16 - Object.values(fields).reduce((s, v) => s + 4 + Buffer.byteLength(v), 0);
      nonces.add(record.subarray(headerLength, headerLength + 12).toString('hex'));
    }
    expect(nonces.size).toBe(200);
  });

  it('fails on a flip of any single byte: version, key ids, field list, nonce, tag and ciphertext', () => {
    const key = recordKey();
    const record = sealRecord(binding, key, fields);
    for (let i = 0; i < record.length; i += 1) {
      for (const mask of [0x01, 0x80]) {
        const altered = Buffer.from(record);
        altered[i] = (altered[i] ?? 0) ^ mask;
        expectTampered(() => openRecord(binding, key, altered));
      }
    }
  });

  it('fails when truncated or extended', () => {
    const key = recordKey();
    const record = sealRecord(binding, key, fields);
    for (const length of [0, 1, 21, 40, record.length - 1]) {
      expectTampered(() => openRecord(binding, key, record.subarray(0, length)));
    }
    expectTampered(() => openRecord(binding, key, Buffer.concat([record, Buffer.of(0)])));
  });

  it('fails when moved to another contact or tenant', () => {
    const key = recordKey();
    const record = sealRecord(binding, key, fields);
    expectTampered(() => openRecord({ ...binding, contactId: 'contact-2' }, key, record));
    expectTampered(() => openRecord({ ...binding, tenantId: 'tenant-b' }, key, record));
    // Length-prefixing keeps "ab"+"c" apart from "a"+"bc".
    const tricky = sealRecord({ tenantId: 'ab', contactId: 'c' }, key, fields);
    expectTampered(() => openRecord({ tenantId: 'a', contactId: 'bc' }, key, tricky));
  });

  it('fails when the field list is relabelled (values would land under other names)', () => {
    const key = recordKey();
    const record = sealRecord(binding, key, { email: 'jane@example.com', name: 'Jane' });
    expect(openRecord(binding, key, relabel(record, ['email', 'name']))).toEqual({
      email: 'jane@example.com',
      name: 'Jane',
    });
    expectTampered(() => openRecord(binding, key, relabel(record, ['email', 'note'])));
    expectTampered(() => openRecord(binding, key, relabel(record, ['alias', 'email'])));
  });

  it('fails under another data key, even one claiming the same id', () => {
    const key = recordKey();
    const record = sealRecord(binding, key, fields);
    expectTampered(() => openRecord(binding, recordKey(), record));
    expectTampered(() =>
      openRecord(binding, { dataKeyId: key.dataKeyId, key: createSecretKey(randomBytes(32)) }, record),
    );
  });

  it('refuses invalid field names and ids without touching the values', () => {
    const key = recordKey();
    expect(() => sealRecord(binding, key, {})).toThrow(TypeError);
    expect(() => sealRecord(binding, key, { 'E-mail': 'x' })).toThrow('Field names are');
    // A list whose joined form looks like a cached valid list is still refused.
    sealRecord(binding, key, { a: '1', b: '2' });
    expect(() => sealRecord(binding, key, { 'a\u0000b': '1' })).toThrow('Field names are');
    expect(() => sealRecord(binding, key, { 'a,b': '1' })).toThrow('Field names are');
    expect(() => sealRecord({ ...binding, contactId: 'jane@example.com' }, key, fields)).toThrow(TypeError);
  });

  it('round-trips empty and large values', () => {
    const key = recordKey();
    const big = 'x'.repeat(100_000);
    expect(openRecord(binding, key, sealRecord(binding, key, { a: '', b: big }))).toEqual({ a: '', b: big });
  });

  it('encodes any text as UTF-8, ASCII or not, mixed or lone surrogates', () => {
    const key = recordKey();
    const values = ['plain@example.com', 'Zoë', 'abc\u00e9def', '😀 smile', 'x\ud800y', '', '日本語'];
    const fieldsOf = Object.fromEntries(values.map((value, i) => [`f${i}`, value]));
    const opened = openRecord(binding, key, sealRecord(binding, key, fieldsOf));
    for (const [name, value] of Object.entries(fieldsOf)) {
      expect(opened[name]).toBe(Buffer.from(value, 'utf8').toString('utf8'));
    }
  });

  it('orders names the same whatever the insertion order, and reads each field list as its own', () => {
    const key = recordKey();
    const first = sealRecord(binding, key, { phone: '1', email: '2', name: '3' });
    const second = sealRecord(binding, key, { name: '3', email: '2', phone: '1' });
    expect(first.subarray(0, 21 + 18)).toEqual(second.subarray(0, 21 + 18)); // the header: ids and field list
    const other = sealRecord(binding, key, { a: 'x', b: 'y' });
    expect(openRecord(binding, key, first)).toEqual({ email: '2', name: '3', phone: '1' });
    expect(openRecord(binding, key, other)).toEqual({ a: 'x', b: 'y' });
    const header = readRecordHeader(first);
    header.fieldNames.push('extra');
    expect(readRecordHeader(first).fieldNames).toEqual(['email', 'name', 'phone']);
    expect(openRecord(binding, key, second)).toEqual({ email: '2', name: '3', phone: '1' });
  });
});
