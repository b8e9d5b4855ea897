import { Writable } from 'node:stream';
import { createLogger, errorCode } from './logger';

// Canaries: if any of these shows up in a log line, personal data or a secret leaked.
const EMAIL = 'canary.jane@example.com';
const PHONE = '+447700900123';
const NAME = 'Canaryjane';
const SURNAME = 'Canarydoe';
const STREET = '42 Canary Wharf Road';
const PLAINTEXT = 'plaintext-canary-0xdeadbeef';
const PASSWORD = 'hunter2-canary';
const TOKEN = 'eyJcanary.token.sig';
const SECRET = 'secret-canary-value';
const COOKIE = 'sid=canary-cookie';
const CANARIES = [EMAIL, PHONE, NAME, SURNAME, STREET, PLAINTEXT, PASSWORD, TOKEN, SECRET, COOKIE, 'canary'];

function capture(level = 'trace') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  const logger = createLogger({ service: 'consent', level, destination });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function expectNoCanary(lines: readonly string[]) {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    for (const canary of CANARIES) expect(line.toLowerCase()).not.toContain(canary.toLowerCase());
  }
}

describe('createLogger', () => {
  it('writes JSON with service, level and message, keeping ids and codes', () => {
    const { logger, records } = capture();
    logger.info({ tenantId: 't-1', contactId: 'c-42', reason: 'CONSENT_TOKEN_EXPIRED' }, 'opt-in refused');
    const [record] = records();
    expect(record).toMatchObject({
      level: 'info',
      service: 'sealpost-consent',
      msg: 'opt-in refused',
      tenantId: 't-1',
      contactId: 'c-42',
      reason: 'CONSENT_TOKEN_EXPIRED',
    });
  });

  it('redacts personal-data keys at the top level and at any depth, in any case style', () => {
    const { logger, lines, records } = capture();
    logger.info({
      email: EMAIL,
      phone: PHONE,
      firstName: NAME,
      last_name: SURNAME,
      address: STREET,
      contactId: 'c-1',
      contact: { name: `${NAME} ${SURNAME}`, fields: { primaryEmail: EMAIL, MobilePhone: PHONE } },
      batch: [
        { recipient: { emailAddress: EMAIL } },
        { deeply: { nested: { in: { an: { array: { plaintext: PLAINTEXT } } } } } },
      ],
      auth: { password: PASSWORD, accessToken: TOKEN, clientSecret: SECRET },
      req: { headers: { authorization: `Bearer ${TOKEN}`, cookie: COOKIE } },
      map: new Map([['email', EMAIL]]),
      bytes: Buffer.from(PLAINTEXT),
    });
    expectNoCanary(lines);
    const [record] = records();
    expect(record).toMatchObject({
      email: '[REDACTED]',
      phone: '[REDACTED]',
      firstName: '[REDACTED]',
      last_name: '[REDACTED]',
      address: '[REDACTED]',
      contactId: 'c-1',
      contact: { name: '[REDACTED]', fields: { primaryEmail: '[REDACTED]', MobilePhone: '[REDACTED]' } },
      auth: { password: '[REDACTED]', accessToken: '[REDACTED]', clientSecret: '[REDACTED]' },
      bytes: `[binary ${Buffer.byteLength(PLAINTEXT)} bytes]`,
    });
  });

  it('masks addresses and phone numbers that appear under harmless keys or in the message', () => {
    const { logger, lines } = capture();
    logger.warn(
      { note: `bounce for ${EMAIL}`, sms: `from ${PHONE} and +44 7700 900123` },
      'delivery to %s via %s failed',
      EMAIL,
      PHONE,
    );
    logger.info(`template rendered for ${EMAIL}`);
    expectNoCanary(lines);
    expect(lines.join('\n')).toContain('[email]');
    expect(lines.join('\n')).toContain('[phone]');
  });

  it('logs errors by type, code, scrubbed message and stack frames only', () => {
    const { logger, lines, records } = capture();
    const cause = Object.assign(new Error(`E11000 duplicate key: { email: "${EMAIL}" }`), {
      code: 11000,
      keyValue: { email: EMAIL, name: NAME },
      errmsg: `dup ${PHONE}`,
    });
    const error = Object.assign(new Error(`upsert failed for ${EMAIL}`, { cause }), {
      code: 'VAULT_CONFLICT',
      contact: { phone: PHONE },
      input: { street: STREET },
    });
    logger.error(error);
    logger.error({ err: error, contactId: 'c-9' }, 'upsert failed');
    logger.error({ context: { attempts: [error] } }, 'nested error');
    expectNoCanary(lines);
    const [bare, withKey, nested] = records();
    expect(bare).toMatchObject({
      err: { type: 'Error', code: 'VAULT_CONFLICT', message: 'upsert failed for [email]' },
    });
    expect(bare?.msg).toBe('upsert failed for [email]');
    const err = (withKey as { err: Record<string, unknown> }).err;
    expect(Object.keys(err).sort()).toEqual(['cause', 'code', 'message', 'stack', 'type']);
    expect(err.stack).toMatch(/^\s+at /);
    expect(err.cause).toMatchObject({ type: 'Error', code: 11000 });
    expect(err.cause).not.toHaveProperty('keyValue');
    expect(nested).toMatchObject({ context: { attempts: [{ code: 'VAULT_CONFLICT' }] } });
  });

  it('logs the first line of an error message only, in err and msg, and no message inside the stack', () => {
    const { logger, lines, records } = capture();
    const error = new Error(`validation failed\n  field value: ${NAME} ${SURNAME}`);
    logger.error(error);
    logger.error({ err: error });
    expect(lines.join('\n')).not.toContain(NAME);
    for (const record of records()) {
      expect(record.msg).toBe('validation failed');
      expect(record.err).toMatchObject({ message: 'validation failed', stack: expect.stringMatching(/^\s+at /) });
    }
  });

  it('redacts child bindings and survives cycles', () => {
    const { logger, lines, records } = capture();
    const cyclic: Record<string, unknown> = { id: 'x-1', email: EMAIL };
    cyclic.self = cyclic;
    logger.child({ operator: { displayName: NAME, id: 'op-7' } }).info({ cyclic }, 'child');
    expectNoCanary(lines);
    expect(records()[0]).toMatchObject({
      operator: { displayName: '[REDACTED]', id: 'op-7' },
      cyclic: { id: 'x-1', self: '[circular]' },
    });
  });

  it('does not change the objects it logs', () => {
    const { logger } = capture();
    const payload = { email: EMAIL, nested: { phone: PHONE } };
    logger.info(payload);
    expect(payload).toEqual({ email: EMAIL, nested: { phone: PHONE } });
  });

  it('logs an HTTP request as method and path with query values removed', () => {
    const { logger, lines, records } = capture();
    const req = {
      method: 'GET',
      url: `/confirm?token=${TOKEN}&email=${EMAIL}`,
      headers: { cookie: COOKIE },
      socket: {},
    };
    logger.info({ req }, 'request');
    expectNoCanary(lines);
    expect(records()[0]).toMatchObject({ req: { method: 'GET', url: '/confirm?token=REDACTED&email=REDACTED' } });
  });

  it('honours the level', () => {
    const { logger, lines } = capture('warn');
    logger.info('hidden');
    logger.warn('shown');
    expect(lines).toHaveLength(1);
  });
});

describe('errorCode', () => {
  it('names an error by its code or class, never by its message (which may quote input)', () => {
    const coded = Object.assign(new Error('jane@example.com is taken'), { code: 'DEDUPE_CONFLICT' });
    expect(errorCode(coded)).toBe('DEDUPE_CONFLICT');
    expect(errorCode(new TypeError('bad phone +447911123456'))).toBe('TypeError');
    expect(errorCode('jane@example.com')).toBe('error');
    expect(errorCode(undefined, 'unknown')).toBe('unknown');
  });
});
